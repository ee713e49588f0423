/* The whole disk under a partition, for the EFI test and benchmark applications. */
#include <efi.h>
#include <efilib.h>
#include "whole-disk.h"

EFI_BLOCK_IO *whole_disk_of(EFI_HANDLE part)
{
	EFI_DEVICE_PATH *path = DuplicateDevicePath(DevicePathFromHandle(part));
	EFI_DEVICE_PATH *node, *last = NULL, *rest;
	EFI_BLOCK_IO *bio = NULL;
	EFI_HANDLE disk;

	if (!path)
		return NULL;
	for (node = path; !IsDevicePathEnd(node); node = NextDevicePathNode(node))
		last = node;
	/* Cut the partition node: what is left names the disk. */
	if (last) {
		SetDevicePathEndNode(last);
		rest = path;
		if (!EFI_ERROR(gBS->LocateDevicePath(&BlockIoProtocol, &rest, &disk)) &&
		    IsDevicePathEnd(rest))
			gBS->HandleProtocol(disk, &BlockIoProtocol, (VOID **)&bio);
	}
	FreePool(path);
	return bio && !bio->Media->LogicalPartition ? bio : NULL;
}
