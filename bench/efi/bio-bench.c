/* Read benchmark started from a disk's ESP: 32 MiB through the whole disk's BlockIo in 64 KiB calls, between console markers. */
#include <efi.h>
#include <efilib.h>
#include "whole-disk.h"

#define BENCH_BYTES (32u * 1024 * 1024)
#define CALL_BYTES (64u * 1024)

/* A checksum of everything read, so runs over different transports can be compared. */
static UINT64 mix(UINT64 sum, const UINT64 *words, UINTN n)
{
	UINTN i;

	for (i = 0; i < n; i++)
		sum = (sum << 7 | sum >> 57) ^ words[i];
	return sum;
}

/* gnu-efi's crt0 calls this with the SysV convention: no EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_LOADED_IMAGE *self;
	EFI_BLOCK_IO *bio = NULL;
	UINT64 *buf, sum = 0;
	UINT32 done;
	EFI_STATUS status = EFI_SUCCESS;

	InitializeLib(image, systab);
	/* The disk under the partition this image was loaded from. */
	if (!EFI_ERROR(gBS->HandleProtocol(image, &LoadedImageProtocol, (VOID **)&self)))
		bio = whole_disk_of(self->DeviceHandle);
	buf = AllocatePool(CALL_BYTES);
	if (!bio || !buf || (bio->Media->LastBlock + 1) * bio->Media->BlockSize < BENCH_BYTES) {
		Print(L"BENCH FAIL no disk of 32 MiB under this image\n");
		return EFI_NOT_FOUND;
	}
	Print(L"BENCH start\n");
	for (done = 0; done < BENCH_BYTES && !EFI_ERROR(status); done += CALL_BYTES) {
		status = bio->ReadBlocks(bio, bio->Media->MediaId, done / bio->Media->BlockSize,
					 CALL_BYTES, buf);
		sum = mix(sum, buf, CALL_BYTES / 8);
	}
	if (EFI_ERROR(status))
		Print(L"BENCH FAIL read at byte %d: %r\n", done, status);
	else
		Print(L"BENCH end sum=%lx\n", sum);
	gRT->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
	return status;
}
