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

static void put_ip(uint8_t out[4], const EFI_IPv4_ADDRESS *ip)
{
	CopyMem(out, (VOID *)ip->Addr, 4);
}

/* Publish (or replace, after a re-attach) the table for the client's session.
 * The firmware copies the table into ACPI memory, which survives
 * ExitBootServices; a local buffer is enough. */
EFI_STATUS nd_boot_table_install(const struct nd_client *c, const struct nd_netinfo *ni)
{
	EFI_GUID guid = ACPI_TABLE_PROTOCOL_GUID;
	struct nd_boot_table t;
	EFI_STATUS status;

	if (!acpi) {
		status = gBS->LocateProtocol(&guid, NULL, (VOID **)&acpi);
		if (EFI_ERROR(status))
			return status;
	}
	ZeroMem(&t, sizeof(t));
	CopyMem(t.signature, ND_BT_SIGNATURE, 4);
	t.length[0] = sizeof(t);
	t.revision = ND_BT_REVISION;
	CopyMem(t.oem_id, ND_BT_OEM_ID, 6);
	CopyMem(t.oem_table_id, ND_BT_OEM_TABLE_ID, 8);
	t.version = ND_BT_VERSION;
	t.firmware = ND_BT_FW_EFI;
	t.mode = c->mode;
	CopyMem(t.mac, (VOID *)ni->mac, 6);
	put_ip(t.client_ip, &ni->local);
	put_ip(t.netmask, &ni->netmask);
	put_ip(t.gateway, &ni->gateway);
	put_ip(t.server_ip, &ni->server);
	nd_put16(t.udp_port, ni->port);
	nd_put16(t.nbd_port, ni->port);
	CopyMem(t.token, (VOID *)c->token, 16);
	nd_put64(t.sectors, c->sectors);
	CopyMem(t.image, (VOID *)c->image, ND_IMAGE_NAME_LEN);
	nd_bt_seal(&t);
	if (installed)
		acpi->uninstall(acpi, table_key);
	status = acpi->install(acpi, &t, sizeof(t), &table_key);
	installed = !EFI_ERROR(status);
	return status;
}

/* Take the table back when the loader returned and the session ends. */
void nd_boot_table_uninstall(void)
{
	if (installed)
		acpi->uninstall(acpi, table_key);
	installed = 0;
}
