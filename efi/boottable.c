/* The boot table for the OS (docs/handoff.md), installed as the ACPI table NDSK. */
#include "netdisk.h"
#include "netdisk/boottable.h"

/* gnu-efi does not define the ACPI table protocol (UEFI spec, "ACPI Table Protocol"). */
#define ACPI_TABLE_PROTOCOL_GUID \
	{ 0xffe06bdd, 0x6107, 0x46a6, { 0x7b, 0xb2, 0x5a, 0x9c, 0x7e, 0xc5, 0x27, 0x5c } }

struct acpi_table_protocol {
	EFI_STATUS (EFIAPI *install)(struct acpi_table_protocol *this, VOID *table, UINTN size,
				     UINTN *key);
	EFI_STATUS (EFIAPI *uninstall)(struct acpi_table_protocol *this, UINTN key);
};

static struct acpi_table_protocol *acpi;
static UINTN installed_key;
static BOOLEAN installed;

/* ACPI header fields are little-endian, unlike the netdisk body. */
static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void fill(struct nd_boot_table *t, const struct nd_client *c, const struct nd_netinfo *ni)
{
	ZeroMem(t, sizeof(*t));
	CopyMem(t->signature, ND_BT_SIGNATURE, 4);
	put_le32(t->length, sizeof(*t));
	t->revision = ND_BT_REVISION;
	CopyMem(t->oem_id, ND_BT_OEM_ID, 6);
	CopyMem(t->oem_table_id, ND_BT_OEM_TABLE_ID, 8);
	put_le32(t->oem_revision, 1);
	CopyMem(t->creator_id, ND_BT_SIGNATURE, 4);
	put_le32(t->creator_revision, 1);
	t->version = ND_BT_VERSION;
	t->firmware = ND_BT_FW_EFI;
	t->mode = c->mode;
	CopyMem(t->mac, ni->mac, 6);
	CopyMem(t->client_ip, ni->local.Addr, 4);
	CopyMem(t->netmask, ni->netmask.Addr, 4);
	CopyMem(t->gateway, ni->gateway.Addr, 4);
	CopyMem(t->server_ip, ni->server.Addr, 4);
	nd_put16(t->udp_port, ni->port);
	nd_put16(t->nbd_port, ni->port); /* netdiskd serves NBD on the same port over TCP */
	CopyMem(t->token, c->token, sizeof(t->token));
	nd_put64(t->sectors, c->sectors);
	CopyMem(t->image, c->image, sizeof(t->image));
	nd_bt_seal(t);
}

/* Publish (or, after a re-attach, replace) the table.  The firmware copies
 * it, so the OS finds it in ACPI memory whatever happens to this program. */
EFI_STATUS nd_publish_boot_table(const struct nd_client *c, const struct nd_netinfo *ni)
{
	EFI_GUID guid = ACPI_TABLE_PROTOCOL_GUID;
	struct nd_boot_table table;
	EFI_STATUS status;

	if (!acpi) {
		status = gBS->LocateProtocol(&guid, NULL, (VOID **)&acpi);
		if (EFI_ERROR(status)) {
			Print(L"netdisk: no ACPI table protocol (%r): Linux will use DHCP\n", status);
			acpi = NULL;
			return status;
		}
	}
	if (installed) {
		acpi->uninstall(acpi, installed_key);
		installed = FALSE;
	}
	fill(&table, c, ni);
	status = acpi->install(acpi, &table, sizeof(table), &installed_key);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: cannot publish the boot table (%r)\n", status);
		return status;
	}
	installed = TRUE;
	return EFI_SUCCESS;
}
