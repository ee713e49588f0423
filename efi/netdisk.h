/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Interfaces between the parts of the UEFI stub (entry, transports, disk, boot).
 * Naming: efi_* is this stub's own; nd_* is the portable client core (client/). */
#ifndef NETDISK_EFI_H
#define NETDISK_EFI_H

#include <efi.h>
#include <efilib.h>
#include "ndclient.h"
#include "policy.h"
#include "ipstack.h"
#include "group.h"
#include "netdisk/bootcfg.h"

/* Vendor messaging device path node that marks a netdisk disk. */
#define NETDISK_VENDOR_GUID \
	{ 0x6e647369, 0x6b2d, 0x4e44, { 0x9a, 0x5e, 0x31, 0x7c, 0x2b, 0x0d, 0x64, 0x6b } }

/* The boot configuration block patched into this binary (main.c). */
extern struct nd_bootcfg efi_bootcfg;

/* Where the network is, as learnt from the PXE base code that loaded us. */
struct efi_netinfo {
	EFI_HANDLE nic;              /* the NIC: its SNP and the UDP4 service binding */
	EFI_DEVICE_PATH *nic_path;   /* its device path */
	EFI_IPv4_ADDRESS local;
	EFI_IPv4_ADDRESS netmask;
	EFI_IPv4_ADDRESS gateway;    /* 0.0.0.0 when DHCP named no router */
	EFI_IPv4_ADDRESS server;
	UINT16 port;
	UINT8 mac[6];
	EFI_IPv4_ADDRESS dhcp;       /* DHCP option 54 (the iBFT's), 0.0.0.0 = unknown */
	EFI_IPv4_ADDRESS dns;        /* DHCP option 6, the first; 0.0.0.0 = none */
	UINT16 pci_bdf;              /* the NIC's PCI bus << 8 | dev << 3 | fn, 0 = unknown */
};

/* Where the network is, and the firmware's UDP4 as a transport (udp4.c). */
EFI_STATUS efi_net_discover(EFI_HANDLE image, struct efi_netinfo *ni);
EFI_STATUS efi_udp4_open(const struct efi_netinfo *ni, struct nd_transport *tp);
void efi_udp4_close(void);
void efi_udp4_stop(void);

/* The NIC's SNP as a frame device for the own IPv4/UDP (snp.c), used
 * between efi_snp_hold() and efi_snp_release(). */
struct nd_framedev;
EFI_STATUS efi_snp_open(const struct efi_netinfo *ni, struct nd_framedev **dev);
EFI_TPL efi_snp_hold(void);
void efi_snp_release(EFI_TPL tpl);
void efi_snp_close(void);
void efi_snp_stop(void);
/* Let the NIC take the frames of IPv4 multicast group `group`. */
EFI_STATUS efi_snp_join(const UINT8 group[4]);

/* The boot NIC on the stubs' own driver when it is a legacy virtio-net
 * (virtio.c): the firmware's drivers are disconnected from it until
 * efi_virtio_close() gives it back.  Its handle goes away meanwhile, so
 * open replaces ni->nic_path by a copy and close finds ni->nic anew. */
EFI_STATUS efi_virtio_open(EFI_HANDLE image, struct efi_netinfo *ni, struct nd_framedev **dev);
void efi_virtio_close(struct efi_netinfo *ni);
void efi_virtio_stop(void);

/* The transport in use (net.c): own IPv4/UDP on the own virtio-net
 * driver, else on SNP, else the firmware's UDP4.  ni may change on the
 * way (see efi_virtio_open).  Client-core calls go between efi_net_hold()
 * and efi_net_release(); efi_net_close() gives the NIC back. */
EFI_STATUS efi_net_open(EFI_HANDLE image, struct efi_netinfo *ni, struct nd_transport *tp);
const char *efi_net_name(void);
EFI_TPL efi_net_hold(void);
void efi_net_release(EFI_TPL tpl);
void efi_net_close(struct efi_netinfo *ni);
void efi_net_stop(void);
/* Multicast (docs/protocol.md): only the own IPv4/UDP can join a group
 * (IGMP, the NIC's filter); efi_net_stop leaves it on the own driver. */
BOOLEAN efi_net_can_join(void);
EFI_STATUS efi_net_join(const UINT8 group[4], UINT16 port);

/* Copies of disk data: gnu-efi's CopyMem moves a byte at a time, the
 * firmware's a word at a time, several times faster (under TCG, five). */
static inline void efi_copy(void *dst, const void *src, UINTN len)
{
	gBS->CopyMem(dst, (VOID *)src, len);
}

/* Millisecond clock (clock.c). */
void efi_clock_init(void);
uint32_t efi_clock_ms(void);
uint32_t efi_clock_entropy(void);

/* The BlockIo disk on its own handle (disk.c). */
EFI_STATUS efi_disk_install(struct nd_client *c, const struct efi_netinfo *ni, EFI_HANDLE *disk);
void efi_disk_uninstall(void);

/* The boot table as ACPI table NDSK, for the OS's takeover, and with
 * takeover = iscsi the server's iBFT as ACPI table iBFT (acpi.c). */
EFI_STATUS efi_boot_table_install(struct nd_client *c, const struct efi_netinfo *ni);
void efi_boot_table_uninstall(void);

/* Loading the OS loader from the disk (boot.c). */
EFI_STATUS efi_boot(EFI_HANDLE image, EFI_HANDLE disk, const CHAR16 *path);

#endif /* NETDISK_EFI_H */
