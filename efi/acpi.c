/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The boot table (docs/handoff.md) as an ACPI table, so Linux finds the session in /sys/firmware/acpi/tables/NDSK; with takeover = iscsi the server's iBFT as ACPI table iBFT. */
#include "netdisk.h"
#include "netdisk/boottable.h"

/* EFI_ACPI_TABLE_PROTOCOL (UEFI spec, ACPI Protocols); gnu-efi lacks it. */
#define ACPI_TABLE_PROTOCOL_GUID \
	{ 0xffe06bdd, 0x6107, 0x46a6, { 0x7b, 0xb2, 0x5a, 0x9c, 0x7e, 0xc5, 0x27, 0x5c } }

struct acpi_table_protocol {
	EFI_STATUS(EFIAPI *install)(struct acpi_table_protocol *self, VOID *table, UINTN size,
				    UINTN *key);
	EFI_STATUS(EFIAPI *uninstall)(struct acpi_table_protocol *self, UINTN key);
};

static struct acpi_table_protocol *acpi;
static UINTN table_key, ibft_key;
static int installed, ibft_installed;

/* takeover = iscsi (the reply's handoff bit): the iBFT netdiskd builds for
 * the session from the NIC's facts, installed as ACPI table "iBFT" where
 * Linux's iscsi_ibft and Windows look on UEFI.  An earlier session's table
 * goes; without a new one the OS takes the disk over by NBD. */
static void ibft_install(struct nd_client *c, const struct efi_netinfo *ni)
{
	struct nd_ibft_req q;
	EFI_STATUS status = EFI_SUCCESS;
	EFI_TPL tpl;
	int n;

	if (ibft_installed)
		acpi->uninstall(acpi, ibft_key);
	ibft_installed = 0;
	if (!(c->handoff & ND_HANDOFF_ISCSI))
		return;
	ZeroMem(&q, sizeof(q));
	CopyMem(q.ip, (VOID *)ni->local.Addr, 4);
	CopyMem(q.server, (VOID *)ni->server.Addr, 4);
	CopyMem(q.netmask, (VOID *)ni->netmask.Addr, 4);
	CopyMem(q.gateway, (VOID *)ni->gateway.Addr, 4);
	CopyMem(q.dhcp, (VOID *)ni->dhcp.Addr, 4);
	CopyMem(q.dns, (VOID *)ni->dns.Addr, 4);
	CopyMem(q.mac, (VOID *)ni->mac, 6);
	nd_put16(q.pci_bdf, ni->pci_bdf);
	tpl = efi_net_hold();
	n = nd_ibft(c, &q);
	if (n >= 0) /* the firmware copies it before the next request reuses rxbuf */
		status = acpi->install(acpi, c->rxbuf + ND_HDR_SIZE, (UINTN)n, &ibft_key);
	efi_net_release(tpl);
	if (n < 0)
		Print(L"netdisk: no iBFT (%a): the OS takes the disk over by NBD\n",
		      n == ND_E_STATUS ? nd_status_text(c->last_status) : nd_result_text(n));
	else if (EFI_ERROR(status))
		Print(L"netdisk: cannot install the iBFT (ACPI): %r: the OS takes the disk over by NBD\n",
		      status);
	else
		Print(L"netdisk: iBFT for the OS's iSCSI takeover (%d bytes)\n", n);
	ibft_installed = n >= 0 && !EFI_ERROR(status);
}

/* Publish (or replace, after a re-attach) the table for the client's session.
 * The firmware copies the table into ACPI memory, which survives
 * ExitBootServices; a local buffer is enough. */
EFI_STATUS efi_boot_table_install(struct nd_client *c, const struct efi_netinfo *ni)
{
	EFI_GUID guid = ACPI_TABLE_PROTOCOL_GUID;
	struct nd_boot_table t;
	struct nd_netfacts n;
	EFI_STATUS status;

	if (!acpi) {
		status = gBS->LocateProtocol(&guid, NULL, (VOID **)&acpi);
		if (EFI_ERROR(status))
			return status;
	}
	CopyMem(n.mac, (VOID *)ni->mac, 6);
	CopyMem(n.ip, (VOID *)ni->local.Addr, 4);
	CopyMem(n.netmask, (VOID *)ni->netmask.Addr, 4);
	CopyMem(n.gateway, (VOID *)ni->gateway.Addr, 4);
	CopyMem(n.server, (VOID *)ni->server.Addr, 4);
	n.port = ni->port;
	nd_boot_table(c, ND_BT_FW_EFI, &n, &t);
	if (installed)
		acpi->uninstall(acpi, table_key);
	status = acpi->install(acpi, &t, sizeof(t), &table_key);
	installed = !EFI_ERROR(status);
	ibft_install(c, ni);
	return status;
}

/* Take the table back when the loader returned and the session ends. */
void efi_boot_table_uninstall(void)
{
	if (installed)
		acpi->uninstall(acpi, table_key);
	if (ibft_installed)
		acpi->uninstall(acpi, ibft_key);
	installed = ibft_installed = 0;
}
