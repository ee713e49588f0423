/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk.efi: attaches a netdisk over the PXE boot NIC, offers it as a UEFI disk and boots from it. */
#include "netdisk.h"

#define DEFAULT_BOOT_PATH L"\\EFI\\BOOT\\BOOTX64.EFI"
#define DEFAULT_ATTACH_TIMEOUT 60 /* seconds */
#define DGRAM_SIZE (8192 + ND_HDR_SIZE) /* largest datagram tried: 8 KiB of sectors */
#define PROBE_GIVE_UP_MS 2000 /* a probe that stalls this long has lost datagrams */
#define DETACH_TIMEOUT_MS 2000 /* a courtesy to the server; not worth a long wait */

/* Patched in the binary by `netdisk patch`; found there by its magic. */
struct nd_bootcfg efi_bootcfg __attribute__((used)) = {
	.magic = ND_BOOTCFG_MAGIC,
	.version = ND_BOOTCFG_VERSION,
};

static struct nd_client client;
static struct efi_netinfo netinfo;
static char image_name[ND_IMAGE_NAME_LEN + 1];
static CHAR16 boot_path[sizeof(efi_bootcfg.boot_path) + 1];
static uint8_t txbuf[DGRAM_SIZE], rxbuf[DGRAM_SIZE];
static struct nd_group group;

/*
 * The multicast block cache.  VMs or machines that boot together drift
 * apart by seconds (firmware, NIC and CPU speeds differ), so a block the
 * group carried for the first of them must still be here when the last one
 * reads it: kept 30 s, in up to 64 MiB (the demo disk's firmware phase
 * reads 20 MiB).  Measured with bench/vm-storm.sh, three UEFI VMs booting
 * at once cost the server 3.15 x one VM's bytes with 4 MiB kept 2 s, 1.69 x
 * with 32 MiB and 1.47 x with 64 MiB kept 30 s (docs/lab.md).  A machine
 * short of memory gets a smaller cache, and with none it reads by unicast.
 */
static const UINTN group_cache_bytes[] = { 64 << 20, 16 << 20, 4 << 20 };
#define GROUP_TIMEOUT_MS 30000 /* how long a block is kept unread */

/*
 * Datagram sizes to try, largest first, each with the window asked for.  A
 * large datagram reaches us as IP fragments that the transport reassembles:
 * one datagram per 8 KiB instead of per 1.4 KiB roughly halves the time of
 * a long read through UDP4, but a network or NIC that drops fragments needs
 * the small size.  Eight 8 KiB datagrams in flight, not more: with sixteen,
 * reads larger than 64 KiB overflowed the receive buffer of QEMU's
 * user-network socket on the host (RcvbufErrors in /proc/net/snmp) and
 * waited for retransmissions.
 */
static const struct nd_ladder_step dgram_ladder[] = { { DGRAM_SIZE, 8 }, { ND_DEFAULT_DGRAM, 16 } };

static void print_ip(const EFI_IPv4_ADDRESS *ip)
{
	Print(L"%d.%d.%d.%d", ip->Addr[0], ip->Addr[1], ip->Addr[2], ip->Addr[3]);
}

static void print_server(void)
{
	print_ip(&netinfo.server);
	Print(L":%d", netinfo.port);
}

/* The client core tells us when the server goes quiet and when it is back,
 * the stub policy what its probe and session recovery do.  Each request in
 * flight reports its own retry: one line a second is enough. */
static void on_event(void *ctx, int event, uint32_t arg)
{
	static uint32_t last_shown = ~0u;

	if (event == ND_EV_RETRY && arg / 1000 != last_shown) {
		last_shown = arg / 1000;
		Print(L"netdisk: server ");
		print_server();
		Print(L" not answering, retrying (%d s)\n", last_shown);
	} else if (event == ND_EV_RECOVERED) {
		last_shown = ~0u;
		Print(L"netdisk: server answers again\n");
	} else if (event == ND_EV_PROBE_LOST) {
		Print(L"netdisk: %d-byte datagrams, window %d get lost here, trying %d, window %d\n",
		      client.dgram, client.window, dgram_ladder[arg].dgram, dgram_ladder[arg].window);
	} else if (event == ND_EV_SESSION_LOST) {
		Print(L"netdisk: %a\n", nd_recovery_text(arg));
	} else if (event == ND_EV_REATTACHED) {
		/* A new session: the OS must take over that one, not the lost one. */
		if (EFI_ERROR(efi_boot_table_install(&client, &netinfo)))
			Print(L"netdisk: could not update the boot table\n");
	}
}

/* Copy the bootcfg's fixed-size text fields into terminated strings. */
static void read_bootcfg(void)
{
	UINTN i;

	for (i = 0; i < sizeof(efi_bootcfg.image) && efi_bootcfg.image[i]; i++)
		image_name[i] = efi_bootcfg.image[i];
	image_name[i] = 0;
	for (i = 0; i < sizeof(efi_bootcfg.boot_path) && efi_bootcfg.boot_path[i]; i++)
		boot_path[i] = (CHAR16)(UINT8)efi_bootcfg.boot_path[i];
	boot_path[i] = 0;
	if (!boot_path[0])
		StrCpy(boot_path, DEFAULT_BOOT_PATH);
}

static uint32_t attach_timeout_s(void)
{
	uint16_t t = nd_get16(efi_bootcfg.attach_timeout);

	return t ? t : DEFAULT_ATTACH_TIMEOUT;
}

static EFI_STATUS attach(void)
{
	EFI_TPL tpl;
	int rc;

	Print(L"netdisk: attaching to ");
	print_server();
	Print(L" image \"%a\"\n", image_name[0] ? image_name : "(server's choice)");
	client.cfg.give_up_ms = attach_timeout_s() * 1000;
	tpl = efi_net_hold();
	rc = nd_attach_ladder(&client, image_name, dgram_ladder,
			      sizeof(dgram_ladder) / sizeof(dgram_ladder[0]), PROBE_GIVE_UP_MS);
	efi_net_release(tpl);
	if (rc == ND_E_TIMEOUT) {
		Print(L"netdisk: no answer from the server in %d s; back to the boot manager\n",
		      attach_timeout_s());
		return EFI_TIMEOUT;
	}
	if (rc == ND_E_STATUS) {
		Print(L"netdisk: the server refused: %a%a\n", nd_status_text(client.last_status),
		      nd_status_reason(&client));
		return EFI_ACCESS_DENIED;
	}
	if (rc < 0) {
		Print(L"netdisk: attach failed: %a\n", nd_result_text(rc));
		return EFI_DEVICE_ERROR;
	}
	/* From here on the disk is in use: a silent server is waited for. */
	client.cfg.give_up_ms = 0;
	Print(L"netdisk: image \"%a\", %ld sectors (%ld MiB), mode %a\n", client.image,
	      client.sectors, client.sectors / 2048, nd_mode_text(client.mode));
	Print(L"netdisk: transport %a, %d-byte datagrams, window %d\n", efi_net_name(), client.dgram,
	      client.window);
	return EFI_SUCCESS;
}

/* Take READ data from the multicast group the server offered, if any
 * (docs/protocol.md, "Multicast"); anything failing leaves us on unicast. */
static void join_group(void)
{
	const UINT8 *a = client.mc_addr;
	EFI_STATUS status;
	EFI_TPL tpl;
	VOID *mem = NULL;
	UINTN i, bytes = 0;

	if (!a[0])
		return;
	for (i = 0; !mem && i < sizeof(group_cache_bytes) / sizeof(group_cache_bytes[0]); i++)
		mem = AllocatePool(bytes = group_cache_bytes[i]);
	tpl = efi_net_hold();
	status = mem ? efi_net_join(a, client.mc_port) : EFI_OUT_OF_RESOURCES;
	if (!EFI_ERROR(status) &&
	    nd_group_attach(&client, &group, mem, bytes, GROUP_TIMEOUT_MS) != ND_DONE)
		status = EFI_INVALID_PARAMETER;
	efi_net_release(tpl);
	if (EFI_ERROR(status)) {
		if (mem)
			FreePool(mem);
		Print(L"netdisk: cannot join multicast group %d.%d.%d.%d: %r\n", a[0], a[1], a[2],
		      a[3], status);
		return;
	}
	Print(L"netdisk: multicast group %d.%d.%d.%d:%d joined (%d MiB cache)\n", a[0], a[1], a[2],
	      a[3], client.mc_port, (int)(bytes >> 20));
}

static EFI_STATUS start_client(EFI_HANDLE image)
{
	struct nd_transport tp;
	EFI_STATUS status = efi_net_open(image, &netinfo, &tp);

	if (EFI_ERROR(status))
		return status;
	nd_client_init(&client, &tp, txbuf, rxbuf, sizeof(txbuf));
	CopyMem(client.cfg.mac, netinfo.mac, sizeof(client.cfg.mac));
	client.cfg.client_kind = ND_KIND_EFI;
	client.cfg.caps = ND_CAP_BOOT_TABLE | ND_CAP_IBFT; /* as ACPI tables NDSK, iBFT (acpi.c) */
	if (efi_net_can_join())
		client.cfg.caps |= ND_CAP_MULTICAST;
	client.cfg.nonce = efi_clock_entropy();
	if (efi_bootcfg.flags & ND_BOOTCFG_KEYED) /* netdisk patch --key: ATTACH signed */
		client.cfg.key = efi_bootcfg.site_key;
	client.cfg.event = on_event;
	status = attach();
	if (!EFI_ERROR(status))
		join_group();
	return status;
}

/* Serve the disk while the loader runs; returns only if the loader does. */
static EFI_STATUS serve_and_boot(EFI_HANDLE image)
{
	EFI_HANDLE disk;
	EFI_STATUS status = efi_disk_install(&client, &netinfo, &disk);

	if (EFI_ERROR(status)) {
		Print(L"netdisk: cannot install the disk: %r\n", status);
		return status;
	}
	/* Without the table the OS cannot take the disk over; booting still
	 * gets as far as the loader and kernel, so only warn. */
	status = efi_boot_table_install(&client, &netinfo);
	if (EFI_ERROR(status))
		Print(L"netdisk: cannot install the boot table (ACPI): %r\n", status);
	/* The boot manager's watchdog was meant for us; the loader sets its own. */
	gBS->SetWatchdogTimer(0, 0, 0, NULL);
	status = efi_boot(image, disk, boot_path);
	efi_boot_table_uninstall();
	efi_disk_uninstall();
	return status;
}

/* gnu-efi's crt0 calls this with the SysV convention: no EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_STATUS status;
	EFI_TPL tpl;

	InitializeLib(image, systab);
	Print(L"netdisk: UEFI network disk\n");
	read_bootcfg();
	efi_clock_init();
	status = efi_net_discover(image, &netinfo);
	if (EFI_ERROR(status))
		return status;
	Print(L"netdisk: this machine ");
	print_ip(&netinfo.local);
	Print(L", server ");
	print_server();
	Print(L"\n");
	status = start_client(image);
	if (!EFI_ERROR(status)) {
		status = serve_and_boot(image);
		client.cfg.give_up_ms = DETACH_TIMEOUT_MS;
		tpl = efi_net_hold();
		nd_detach(&client);
		efi_net_release(tpl);
	}
	efi_net_close(&netinfo);
	return status;
}
