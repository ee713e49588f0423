/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Starting the OS loader from the netdisk: connect the disk, find its file systems, load the loader. */
#include "netdisk.h"

/* Does `path` begin with every node of `prefix`? */
static BOOLEAN path_starts_with(EFI_DEVICE_PATH *path, EFI_DEVICE_PATH *prefix)
{
	UINTN len = DevicePathSize(prefix) - sizeof(EFI_DEVICE_PATH); /* without the end node */

	return DevicePathSize(path) > len && CompareMem(path, prefix, len) == 0;
}

/* Load and start `path` from one file system; returns only if it cannot or the loader exits. */
static EFI_STATUS boot_from(EFI_HANDLE image, EFI_HANDLE fs, const CHAR16 *path)
{
	EFI_DEVICE_PATH *file = FileDevicePath(fs, (CHAR16 *)path);
	EFI_HANDLE loader;
	EFI_STATUS status;

	if (!file)
		return EFI_OUT_OF_RESOURCES;
	/*
	 * From the file's device path, never from a buffer we read ourselves and
	 * jump into: the firmware then checks the loader against db/dbx as it
	 * checked us, so a Secure Boot chain stays verified (docs/secureboot.md).
	 */
	loader = NULL;
	status = gBS->LoadImage(FALSE, image, file, NULL, 0, &loader);
	FreePool(file);
	if (status == EFI_SECURITY_VIOLATION || status == EFI_ACCESS_DENIED) {
		Print(L"netdisk: the firmware refused %s: %r (Secure Boot: not signed by a key in db)\n",
		      path, status);
		if (loader) /* a Security Violation leaves the image loaded, not startable */
			gBS->UnloadImage(loader);
	}
	if (EFI_ERROR(status))
		return status;
	Print(L"netdisk: starting %s\n", path);
	status = gBS->StartImage(loader, NULL, NULL);
	Print(L"netdisk: %s returned: %r\n", path, status);
	return status;
}

EFI_STATUS efi_boot(EFI_HANDLE image, EFI_HANDLE disk, const CHAR16 *path)
{
	EFI_DEVICE_PATH *disk_path = DevicePathFromHandle(disk);
	EFI_HANDLE *handles;
	UINTN count, i;
	EFI_STATUS status, result = EFI_NOT_FOUND;

	/* Recursively, so the partition driver's children get FAT on them too. */
	gBS->ConnectController(disk, NULL, NULL, TRUE);
	status = gBS->LocateHandleBuffer(ByProtocol, &FileSystemProtocol, NULL, &count, &handles);
	if (EFI_ERROR(status))
		count = 0;
	for (i = 0; i < count && result == EFI_NOT_FOUND; i++) {
		EFI_DEVICE_PATH *fs_path = DevicePathFromHandle(handles[i]);

		if (!fs_path || !path_starts_with(fs_path, disk_path))
			continue;
		status = boot_from(image, handles[i], path);
		/* A file system without the loader: try the next one. */
		if (status != EFI_NOT_FOUND)
			result = status;
	}
	if (count)
		FreePool(handles);
	if (result == EFI_NOT_FOUND)
		Print(L"netdisk: no file system on the disk holds %s\n", path);
	return result;
}
