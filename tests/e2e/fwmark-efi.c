/* SPDX-License-Identifier: GPL-2.0-or-later */
/* End-to-end test loader for UEFI: writes a sector through the netdisk's BlockIo, then starts \EFI\BOOT\BOOTX64.EFI. */
/*
 * The UEFI counterpart of fwmark-mbr.asm: the e2e suite patches netdisk.efi
 * to boot this program (\EFI\E2E\FWMARK.EFI) instead of the loader.  It
 * copies whole-disk sector 1 (the test's marker) to sector 2 through the
 * BlockIo of the disk its ESP lies on (the stub's), then loads the real
 * loader from its own file system, so that Linux finding the marker in
 * sector 2 proves a firmware-phase write reached the session it took over.
 * A failed copy is printed and the boot goes on: the Linux side reports
 * what sector 2 holds.
 */
#include <efi.h>
#include <efilib.h>
#include "whole-disk.h"

#define LOADER L"\\EFI\\BOOT\\BOOTX64.EFI"

static EFI_STATUS copy_marker(EFI_BLOCK_IO *bio)
{
	UINT32 size = bio->Media->BlockSize;
	VOID *buf = AllocatePool(size);
	EFI_STATUS status;

	if (!buf)
		return EFI_OUT_OF_RESOURCES;
	status = bio->ReadBlocks(bio, bio->Media->MediaId, 1, size, buf);
	if (!EFI_ERROR(status))
		status = bio->WriteBlocks(bio, bio->Media->MediaId, 2, size, buf);
	if (!EFI_ERROR(status))
		status = bio->FlushBlocks(bio);
	FreePool(buf);
	return status;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_LOADED_IMAGE *self;
	EFI_BLOCK_IO *bio;
	EFI_DEVICE_PATH *file;
	EFI_HANDLE loader;
	EFI_STATUS status;

	InitializeLib(image, systab);
	status = gBS->HandleProtocol(image, &LoadedImageProtocol, (VOID **)&self);
	if (EFI_ERROR(status))
		return status;
	bio = whole_disk_of(self->DeviceHandle);
	status = bio ? copy_marker(bio) : EFI_NOT_FOUND;
	Print(L"fwmark: sector 1 copied to sector 2: %r\n", status);
	file = FileDevicePath(self->DeviceHandle, LOADER);
	if (!file)
		return EFI_OUT_OF_RESOURCES;
	status = gBS->LoadImage(FALSE, image, file, NULL, 0, &loader);
	FreePool(file);
	if (EFI_ERROR(status)) {
		Print(L"fwmark: cannot load %s: %r\n", LOADER, status);
		return status;
	}
	return gBS->StartImage(loader, NULL, NULL);
}
