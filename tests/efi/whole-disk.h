/* The whole disk under a partition, for the EFI test and benchmark applications. */
#ifndef WHOLE_DISK_H
#define WHOLE_DISK_H

#include <efi.h>

/* The BlockIo of the whole disk under the partition handle `part` (its device
 * path without the last node), whoever provides it: netdisk, iPXE's SAN boot.
 * NULL when there is none. */
EFI_BLOCK_IO *whole_disk_of(EFI_HANDLE part);

#endif /* WHOLE_DISK_H */
