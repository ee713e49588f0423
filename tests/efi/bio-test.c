/* BlockIo check of the netdisk, started from the served disk's ESP; reports "BIOTEST" lines on the console. */
#include "netdisk.h"

/* Layout of the test image (tests/efi-lib.sh writes the same). */
#define PATTERN_LBA 36864ULL   /* first sector of the pattern area, past the ESP */
#define PATTERN_MUL 0x9E3779B97F4A7C15ULL
#define WRITE_LBA 60000ULL     /* sectors the write check overwrites, past those read */
#define WRITE_SECTORS 600      /* spans several WRITE requests */
#define READ_CALL_BYTES (64 * 1024)
#define READ_TOTAL_BYTES (4 * 1024 * 1024)
#define COM1 0x3f8

static EFI_GUID vendor_guid = NETDISK_VENDOR_GUID;
static EFI_BLOCK_IO *bio;
static int failures;

/* 64-bit word `k` of sector `lba` in the pattern area; `flip` gives the written pattern. */
static UINT64 pattern_word(UINT64 lba, UINTN k, int flip)
{
	UINT64 w = lba * PATTERN_MUL + k;

	return flip ? ~w : w;
}

static void fill(UINT8 *buf, UINT64 lba, UINTN sectors, int flip)
{
	UINTN s, k;

	for (s = 0; s < sectors; s++)
		for (k = 0; k < 512 / 8; k++)
			CopyMem(buf + s * 512 + k * 8, &(UINT64){ pattern_word(lba + s, k, flip) }, 8);
}

/* Index of the first sector of `buf` that differs from the pattern, or -1. */
static INTN mismatch(const UINT8 *buf, UINT64 lba, UINTN sectors, int flip)
{
	UINTN s, k;
	UINT64 w;

	for (s = 0; s < sectors; s++)
		for (k = 0; k < 512 / 8; k++) {
			CopyMem(&w, (VOID *)(buf + s * 512 + k * 8), 8);
			if (w != pattern_word(lba + s, k, flip))
				return (INTN)s;
		}
	return -1;
}

static void result(const char *name, int ok, EFI_STATUS status)
{
	if (ok) {
		Print(L"BIOTEST PASS %a\n", name);
	} else {
		Print(L"BIOTEST FAIL %a (%r)\n", name, status);
		failures++;
	}
}

/* The BlockIo whose device path carries the netdisk vendor node (the whole disk). */
static EFI_BLOCK_IO *find_netdisk(void)
{
	EFI_HANDLE *handles;
	UINTN count, i;
	EFI_BLOCK_IO *found = NULL;

	if (EFI_ERROR(gBS->LocateHandleBuffer(ByProtocol, &BlockIoProtocol, NULL, &count, &handles)))
		return NULL;
	for (i = 0; i < count && !found; i++) {
		EFI_DEVICE_PATH *dp = DevicePathFromHandle(handles[i]);
		EFI_BLOCK_IO *b;

		for (; dp && !IsDevicePathEnd(dp); dp = NextDevicePathNode(dp)) {
			VENDOR_DEVICE_PATH *v = (VENDOR_DEVICE_PATH *)dp;

			if (DevicePathType(dp) == MESSAGING_DEVICE_PATH &&
			    DevicePathSubType(dp) == MSG_VENDOR_DP &&
			    CompareGuid(&v->Guid, &vendor_guid) == 0 &&
			    IsDevicePathEnd(NextDevicePathNode(dp)))
				break;
		}
		if (dp && !IsDevicePathEnd(dp) &&
		    !EFI_ERROR(gBS->HandleProtocol(handles[i], &BlockIoProtocol, (VOID **)&b)))
			found = b;
	}
	FreePool(handles);
	return found;
}

static void check_media(void)
{
	EFI_BLOCK_IO_MEDIA *m = bio->Media;

	Print(L"BIOTEST LastBlock=%ld BlockSize=%d MediaId=%d IoAlign=%d ReadOnly=%d\n",
	      m->LastBlock, m->BlockSize, m->MediaId, m->IoAlign, m->ReadOnly);
	result("media", bio->Revision >= EFI_BLOCK_IO_PROTOCOL_REVISION3 && m->MediaPresent &&
			       !m->LogicalPartition && !m->RemovableMedia && m->BlockSize == 512 &&
			       m->IoAlign <= 1 && m->LogicalBlocksPerPhysicalBlock == 1,
	       EFI_SUCCESS);
}

/* Read the pattern area in 64 KiB calls, as a loader streaming a file would. */
static void check_pattern(UINT8 *buf)
{
	UINT64 lba = PATTERN_LBA;
	UINTN per_call = READ_CALL_BYTES / 512, done;
	EFI_STATUS status = EFI_SUCCESS;
	int ok = 1;

	for (done = 0; ok && done < READ_TOTAL_BYTES; done += READ_CALL_BYTES, lba += per_call) {
		INTN bad;

		status = bio->ReadBlocks(bio, bio->Media->MediaId, lba, READ_CALL_BYTES, buf);
		bad = EFI_ERROR(status) ? 0 : mismatch(buf, lba, per_call, 0);
		if (bad >= 0)
			Print(L"BIOTEST wrong data in sector %ld: %lx\n", lba + bad,
			      *(UINT64 *)(buf + bad * 512));
		ok = bad < 0;
	}
	result("pattern-64k-reads", ok, status);
	/* One large call spans many requests and windows of the client core. */
	status = bio->ReadBlocks(bio, bio->Media->MediaId, PATTERN_LBA + 7, 1000 * 512, buf);
	result("pattern-large-read", !EFI_ERROR(status) && mismatch(buf, PATTERN_LBA + 7, 1000, 0) < 0,
	       status);
}

static void check_last_block(UINT8 *buf)
{
	EFI_LBA last = bio->Media->LastBlock;
	EFI_STATUS status = bio->ReadBlocks(bio, bio->Media->MediaId, last - 3, 4 * 512, buf);

	result("last-blocks", !EFI_ERROR(status) && mismatch(buf, last - 3, 4, 0) < 0, status);
}

/* IoAlign <= 1 promises any buffer address works: an odd one must read right. */
static void check_unaligned(UINT8 *buf)
{
	EFI_STATUS status = bio->ReadBlocks(bio, bio->Media->MediaId, PATTERN_LBA, 8 * 512, buf + 1);

	result("unaligned-buffer", !EFI_ERROR(status) && mismatch(buf + 1, PATTERN_LBA, 8, 0) < 0,
	       status);
}

static void expect(const char *name, EFI_STATUS got, EFI_STATUS want)
{
	if (got != want)
		Print(L"BIOTEST %a: got %r, want %r\n", name, got, want);
	result(name, got == want, got);
}

static void check_errors(UINT8 *buf)
{
	EFI_BLOCK_IO_MEDIA *m = bio->Media;

	expect("error-lba-past-end", bio->ReadBlocks(bio, m->MediaId, m->LastBlock + 1, 512, buf),
	       EFI_INVALID_PARAMETER);
	expect("error-span-past-end", bio->ReadBlocks(bio, m->MediaId, m->LastBlock, 1024, buf),
	       EFI_INVALID_PARAMETER);
	expect("error-huge-lba", bio->ReadBlocks(bio, m->MediaId, ~0ULL, 512, buf),
	       EFI_INVALID_PARAMETER);
	expect("error-partial-block", bio->ReadBlocks(bio, m->MediaId, 0, 100, buf),
	       EFI_BAD_BUFFER_SIZE);
	expect("error-write-partial-block", bio->WriteBlocks(bio, m->MediaId, WRITE_LBA, 513, buf),
	       EFI_BAD_BUFFER_SIZE);
	expect("error-media-id", bio->ReadBlocks(bio, m->MediaId + 1, 0, 512, buf),
	       EFI_MEDIA_CHANGED);
	expect("error-null-buffer", bio->ReadBlocks(bio, m->MediaId, 0, 512, NULL),
	       EFI_INVALID_PARAMETER);
	expect("zero-size-read", bio->ReadBlocks(bio, m->MediaId, 0, 0, buf), EFI_SUCCESS);
}

/* Overwrite sectors with the flipped pattern and read them back; the harness
 * then checks the image file on the server holds them too. */
static void check_write(UINT8 *buf)
{
	EFI_STATUS status;

	fill(buf, WRITE_LBA, WRITE_SECTORS, 1);
	status = bio->WriteBlocks(bio, bio->Media->MediaId, WRITE_LBA, WRITE_SECTORS * 512, buf);
	if (!EFI_ERROR(status))
		status = bio->FlushBlocks(bio);
	SetMem(buf, WRITE_SECTORS * 512, 0);
	if (!EFI_ERROR(status))
		status = bio->ReadBlocks(bio, bio->Media->MediaId, WRITE_LBA, WRITE_SECTORS * 512, buf);
	result("write-read-back", !EFI_ERROR(status) && mismatch(buf, WRITE_LBA, WRITE_SECTORS, 1) < 0,
	       status);
	/* Neighbours of the written range are untouched. */
	status = bio->ReadBlocks(bio, bio->Media->MediaId, WRITE_LBA - 1, 512, buf);
	if (!EFI_ERROR(status))
		status = bio->ReadBlocks(bio, bio->Media->MediaId, WRITE_LBA + WRITE_SECTORS, 512,
					 buf + 512);
	result("write-neighbours", !EFI_ERROR(status) && mismatch(buf, WRITE_LBA - 1, 1, 0) < 0 &&
					   mismatch(buf + 512, WRITE_LBA + WRITE_SECTORS, 1, 0) < 0,
	       status);
}

static void outb(UINT16 port, UINT8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static UINT8 inb(UINT16 port)
{
	UINT8 v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* After ExitBootServices there is no console: write COM1 (already set up by the firmware). */
static void serial_puts(const char *s)
{
	for (; *s; s++) {
		while (!(inb(COM1 + 5) & 0x20))
			;
		outb(COM1, (UINT8)*s);
	}
}

/* Leave boot services as an OS would, then the disk must refuse I/O cleanly. */
static void check_after_exit_boot_services(EFI_HANDLE image, UINT8 *buf)
{
	UINTN size = 0, key, desc_size;
	UINT32 desc_version;
	EFI_MEMORY_DESCRIPTOR *map = NULL;
	EFI_STATUS status;

	do {
		if (map)
			FreePool(map);
		size += 4096;
		map = AllocatePool(size);
		status = gBS->GetMemoryMap(&size, map, &key, &desc_size, &desc_version);
	} while (status == EFI_BUFFER_TOO_SMALL);
	status = gBS->ExitBootServices(image, key);
	if (EFI_ERROR(status)) {
		result("exit-boot-services", 0, status);
		return;
	}
	status = bio->ReadBlocks(bio, bio->Media->MediaId, 0, 512, buf);
	serial_puts(status == EFI_NO_MEDIA || status == EFI_DEVICE_ERROR
			    ? "\r\nBIOTEST PASS io-after-exit-boot-services\r\n"
			    : "\r\nBIOTEST FAIL io-after-exit-boot-services\r\n");
	serial_puts(failures ? "BIOTEST DONE with failures\r\n" : "BIOTEST DONE\r\n");
	gRT->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
}

/* gnu-efi's crt0 calls this with the SysV convention: no EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	UINT8 *buf;

	InitializeLib(image, systab);
	Print(L"BIOTEST start\n");
	bio = find_netdisk();
	buf = AllocatePool(1024 * 512 + 1);
	if (!bio || !buf) {
		Print(L"BIOTEST FAIL no netdisk BlockIo found\n");
		return EFI_NOT_FOUND;
	}
	check_media();
	check_pattern(buf);
	check_last_block(buf);
	check_unaligned(buf);
	check_errors(buf);
	if (bio->Media->ReadOnly)
		expect("error-write-protected",
		       bio->WriteBlocks(bio, bio->Media->MediaId, WRITE_LBA, 512, buf),
		       EFI_WRITE_PROTECTED);
	else
		check_write(buf);
	check_after_exit_boot_services(image, buf);
	return EFI_SUCCESS;
}
