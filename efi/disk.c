/* The netdisk as a UEFI disk: BlockIo and a device path on a new handle, dead after ExitBootServices. */
#include "netdisk.h"

#define NETDISK_MEDIA_ID 1

static EFI_GUID vendor_guid = NETDISK_VENDOR_GUID;

static struct {
	EFI_BLOCK_IO block_io;
	EFI_BLOCK_IO_MEDIA media;
	EFI_DEVICE_PATH *path;
	EFI_HANDLE handle;
	EFI_EVENT exit_boot;
	struct nd_client *client;
	BOOLEAN gone;       /* ExitBootServices happened */
} disk;

/* Where nd_read puts data and nd_write takes it from: the caller's buffer. */
static void put_data(void *ctx, uint32_t offset, const void *data, unsigned len)
{
	efi_copy((UINT8 *)ctx + offset, data, len);
}

static void get_data(void *ctx, uint32_t offset, void *data, unsigned len)
{
	efi_copy(data, (UINT8 *)ctx + offset, len);
}

/*
 * Writes go in datagrams that need no IP fragmentation: a WRITE whose data
 * fits one datagram below the Ethernet MTU is sent as exactly that datagram,
 * whatever larger size the session negotiated for reads.  (QEMU's user
 * networking dies on fragmented datagrams from the guest, and networks that
 * drop fragments are common enough.)
 */
#define WRITE_SECTORS ((ND_DEFAULT_DGRAM - ND_HDR_SIZE) / ND_SECTOR_SIZE)

/* Checks every BlockIo call shares; an I/O that passes them goes to the server. */
static EFI_STATUS check_request(UINT32 media_id, EFI_LBA lba, UINTN size, VOID *buffer)
{
	UINTN blocks;

	if (disk.gone || !disk.media.MediaPresent)
		return EFI_NO_MEDIA;
	if (media_id != disk.media.MediaId)
		return EFI_MEDIA_CHANGED;
	if (!buffer)
		return EFI_INVALID_PARAMETER;
	if (size % disk.media.BlockSize)
		return EFI_BAD_BUFFER_SIZE;
	blocks = size / disk.media.BlockSize;
	if (lba > disk.media.LastBlock || (blocks && blocks - 1 > disk.media.LastBlock - lba))
		return EFI_INVALID_PARAMETER;
	/* IoAlign is 1: data is copied out of network buffers, so any
	 * buffer address works and there is no alignment to check. */
	return EFI_SUCCESS;
}

/*
 * A request against the session, redone after the server lost the session
 * (it restarted) when the stub policy (nd_recover, client/policy.c) attached
 * again: the client core already retries silence forever, and the re-ATTACH
 * checks the image kept its size and mode so no wrong data is served.
 */
static EFI_STATUS serve(int write, EFI_LBA lba, UINTN size, VOID *buffer)
{
	struct nd_client *c = disk.client;
	uint32_t count = (uint32_t)(size / ND_SECTOR_SIZE);
	struct nd_retry retry;
	int rc;

	nd_retry_begin(c, &retry);
	if (efi_bootcfg.flags & ND_BOOTCFG_VERBOSE)
		Print(L"netdisk: %a %ld+%d\n", write ? "write" : "read", lba, count);
	for (;;) {
		rc = write ? nd_write_pieces(c, lba, count,
					     c->dgram <= ND_DEFAULT_DGRAM ? 0 : WRITE_SECTORS,
					     get_data, buffer)
			   : nd_read(c, lba, count, put_data, buffer);
		if (rc == ND_DONE)
			return EFI_SUCCESS;
		if (disk.gone)
			return EFI_NO_MEDIA;
		if (!nd_recover(c, rc, &retry))
			break;
	}
	if (rc == ND_E_STATUS && c->last_status == ND_ERR_READONLY)
		return EFI_WRITE_PROTECTED;
	Print(L"netdisk: %a of %d sectors at %ld failed: %a\n", write ? "write" : "read", count,
	      lba, rc == ND_E_STATUS ? nd_status_text(c->last_status) : nd_result_text(rc));
	return rc == ND_E_STATUS && c->last_status == ND_ERR_NOSPACE ? EFI_VOLUME_FULL
								      : EFI_DEVICE_ERROR;
}

/* One request, with the transport's hold on the NIC for its whole length. */
static EFI_STATUS run(int write, EFI_LBA lba, UINTN size, VOID *buffer)
{
	EFI_TPL tpl = efi_net_hold();
	EFI_STATUS status = serve(write, lba, size, buffer);

	efi_net_release(tpl);
	return status;
}

static EFI_STATUS EFIAPI disk_reset(EFI_BLOCK_IO *this, BOOLEAN extended)
{
	return disk.gone ? EFI_DEVICE_ERROR : EFI_SUCCESS;
}

static EFI_STATUS EFIAPI disk_read(EFI_BLOCK_IO *this, UINT32 media_id, EFI_LBA lba,
				   UINTN size, VOID *buffer)
{
	EFI_STATUS status = check_request(media_id, lba, size, buffer);

	if (EFI_ERROR(status) || !size)
		return status;
	return run(0, lba, size, buffer);
}

static EFI_STATUS EFIAPI disk_write(EFI_BLOCK_IO *this, UINT32 media_id, EFI_LBA lba,
				    UINTN size, VOID *buffer)
{
	EFI_STATUS status = check_request(media_id, lba, size, buffer);

	if (!EFI_ERROR(status) && disk.media.ReadOnly)
		status = EFI_WRITE_PROTECTED;
	if (EFI_ERROR(status) || !size)
		return status;
	return run(1, lba, size, buffer);
}

static EFI_STATUS EFIAPI disk_flush(EFI_BLOCK_IO *this)
{
	EFI_TPL tpl;
	int rc;

	if (disk.gone)
		return EFI_NO_MEDIA;
	if (disk.media.ReadOnly)
		return EFI_SUCCESS;
	tpl = efi_net_hold();
	rc = nd_flush(disk.client);
	efi_net_release(tpl);
	return rc == ND_DONE ? EFI_SUCCESS : EFI_DEVICE_ERROR;
}

/* The OS owns the machine now: the NIC is its, and so is all memory but ours. */
static VOID EFIAPI exit_boot_services(EFI_EVENT event, VOID *ctx)
{
	disk.gone = TRUE;
	disk.media.MediaPresent = FALSE;
	efi_net_stop();
}

static void fill_media(struct nd_client *c)
{
	EFI_BLOCK_IO_MEDIA *m = &disk.media;

	ZeroMem(m, sizeof(*m));
	m->MediaId = NETDISK_MEDIA_ID;
	m->MediaPresent = TRUE;
	m->ReadOnly = c->mode == ND_MODE_READONLY;
	m->BlockSize = ND_SECTOR_SIZE;
	m->IoAlign = 1;
	m->LastBlock = c->sectors - 1;
	m->LogicalBlocksPerPhysicalBlock = 1;
	disk.block_io.Revision = EFI_BLOCK_IO_PROTOCOL_REVISION3;
	disk.block_io.Media = m;
	disk.block_io.Reset = disk_reset;
	disk.block_io.ReadBlocks = disk_read;
	disk.block_io.WriteBlocks = disk_write;
	disk.block_io.FlushBlocks = disk_flush;
}

/* The NIC's path plus a vendor node, so the disk is found under its NIC. */
static EFI_DEVICE_PATH *make_path(const struct efi_netinfo *ni)
{
	VENDOR_DEVICE_PATH node;

	ZeroMem(&node, sizeof(node));
	node.Header.Type = MESSAGING_DEVICE_PATH;
	node.Header.SubType = MSG_VENDOR_DP;
	SetDevicePathNodeLength(&node.Header, sizeof(node));
	node.Guid = vendor_guid;
	return AppendDevicePathNode(ni->nic_path, &node.Header);
}

EFI_STATUS efi_disk_install(struct nd_client *c, const struct efi_netinfo *ni, EFI_HANDLE *handle)
{
	EFI_STATUS status;

	if (!c->sectors)
		return EFI_NO_MEDIA;
	disk.client = c;
	fill_media(c);
	disk.path = make_path(ni);
	if (!disk.path)
		return EFI_OUT_OF_RESOURCES;
	status = gBS->CreateEvent(EVT_SIGNAL_EXIT_BOOT_SERVICES, TPL_NOTIFY, exit_boot_services,
				  NULL, &disk.exit_boot);
	if (EFI_ERROR(status))
		return status;
	disk.handle = NULL;
	status = gBS->InstallMultipleProtocolInterfaces(&disk.handle, &DevicePathProtocol, disk.path,
							&BlockIoProtocol, &disk.block_io, NULL);
	if (EFI_ERROR(status)) {
		gBS->CloseEvent(disk.exit_boot);
		return status;
	}
	*handle = disk.handle;
	return EFI_SUCCESS;
}

/* Take the disk away again (the loader returned): nothing may keep using it. */
void efi_disk_uninstall(void)
{
	gBS->DisconnectController(disk.handle, NULL, NULL);
	gBS->UninstallMultipleProtocolInterfaces(disk.handle, &DevicePathProtocol, disk.path,
						 &BlockIoProtocol, &disk.block_io, NULL);
	gBS->CloseEvent(disk.exit_boot);
	FreePool(disk.path);
}
