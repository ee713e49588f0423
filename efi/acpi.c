/* The boot table (docs/handoff.md) as an ACPI table, so Linux finds the session in /sys/firmware/acpi/tables/NDSK. */
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
static UINTN table_key;
static int installed;

/* Publish (or replace, after a re-attach) the table for the client's session.
 * The firmware copies the table into ACPI memory, which survives
 * ExitBootServices; a local buffer is enough. */
EFI_STATUS efi_boot_table_install(const struct nd_client *c, const struct efi_netinfo *ni)
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
	return status;
}

/* Take the table back when the loader returned and the session ends. */
void efi_boot_table_uninstall(void)
{
	if (installed)
		acpi->uninstall(acpi, table_key);
	installed = 0;
}
