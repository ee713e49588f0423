/* The boot NIC taken from the firmware's drivers when it is a virtio-net function, driven by client/virtio_net.c. */
#include "netdisk.h"
#include "virtio_net.h"

/* 64 buffers hold eight 8 KiB datagrams of six frames each, with room to spare. */
#define RX_BUFS 64
#define BELOW_4G 0xffffffffull
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_BAR0 0x10
#define PCI_BAR_IO 1
#define PCI_CAP_PTR 0x34
#define PCI_CAP_MSIX 0x11
#define MSIX_ENABLE 0x8000

static struct {
	EFI_HANDLE pci;          /* the NIC's PCI function */
	EFI_PCI_IO *io;
	UINT64 attributes;       /* the PCI attributes the firmware's driver had */
	EFI_PHYSICAL_ADDRESS mem;
	UINTN pages;
	struct vn_platform plat;
	struct vn_dev dev;
	struct nd_framedev fd;
	BOOLEAN taken;           /* the firmware's drivers are disconnected */
	BOOLEAN driver_kept;     /* the NIC driver stays bound, its SNP unused */
} vt;

static UINT8 io_in8(void *ctx, uint16_t port)
{
	UINT8 v = 0;

	vt.io->Io.Read(vt.io, EfiPciIoWidthUint8, 0, port, 1, &v);
	return v;
}

static UINT16 io_in16(void *ctx, uint16_t port)
{
	UINT16 v = 0;

	vt.io->Io.Read(vt.io, EfiPciIoWidthUint16, 0, port, 1, &v);
	return v;
}

static UINT32 io_in32(void *ctx, uint16_t port)
{
	UINT32 v = 0;

	vt.io->Io.Read(vt.io, EfiPciIoWidthUint32, 0, port, 1, &v);
	return v;
}

static void io_out8(void *ctx, uint16_t port, uint8_t v)
{
	vt.io->Io.Write(vt.io, EfiPciIoWidthUint8, 0, port, 1, &v);
}

static void io_out16(void *ctx, uint16_t port, uint16_t v)
{
	vt.io->Io.Write(vt.io, EfiPciIoWidthUint16, 0, port, 1, &v);
}

static void io_out32(void *ctx, uint16_t port, uint32_t v)
{
	vt.io->Io.Write(vt.io, EfiPciIoWidthUint32, 0, port, 1, &v);
}

/* Memory is identity-mapped under UEFI: a linear address is a pointer.
 * Volatile, because the device writes the rings behind the compiler's back. */
static uint16_t mem_read16(void *ctx, uint32_t addr)
{
	return *(volatile UINT16 *)(UINTN)addr;
}

static uint32_t mem_read32(void *ctx, uint32_t addr)
{
	return *(volatile UINT32 *)(UINTN)addr;
}

static void mem_write16(void *ctx, uint32_t addr, uint16_t v)
{
	*(volatile UINT16 *)(UINTN)addr = v;
}

static void mem_write32(void *ctx, uint32_t addr, uint32_t v)
{
	*(volatile UINT32 *)(UINTN)addr = v;
}

static void mem_copy_from(void *ctx, void *dst, uint32_t addr, unsigned len)
{
	efi_copy(dst, (const void *)(UINTN)addr, len);
}

static void mem_copy_to(void *ctx, uint32_t addr, const void *src, unsigned len)
{
	efi_copy((void *)(UINTN)addr, src, len);
}

static UINT16 cfg16(UINT32 at)
{
	UINT16 v = 0;

	vt.io->Pci.Read(vt.io, EfiPciIoWidthUint16, at, 1, &v);
	return v;
}

/* The driver finds the device config right after the legacy registers only
 * while MSI-X is off; no firmware driver turns it on, but make sure. */
static void msix_off(void)
{
	UINT8 at = 0, id = 0;
	UINT16 ctl;
	UINTN hops;

	if (!(cfg16(PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return;
	vt.io->Pci.Read(vt.io, EfiPciIoWidthUint8, PCI_CAP_PTR, 1, &at);
	for (hops = 0; at >= 0x40 && hops < 48; hops++) {
		vt.io->Pci.Read(vt.io, EfiPciIoWidthUint8, at, 1, &id);
		if (id == PCI_CAP_MSIX) {
			ctl = cfg16(at + 2) & ~MSIX_ENABLE;
			vt.io->Pci.Write(vt.io, EfiPciIoWidthUint16, at + 2, 1, &ctl);
			return;
		}
		vt.io->Pci.Read(vt.io, EfiPciIoWidthUint8, at + 1, 1, &at);
	}
}

/* The PCI function under the NIC's device path, if it is a legacy virtio-net. */
static EFI_STATUS find_pci(const struct efi_netinfo *ni)
{
	EFI_DEVICE_PATH *walk = ni->nic_path;
	UINT32 bar = 0;
	EFI_STATUS status;

	status = gBS->LocateDevicePath(&PciIoProtocol, &walk, &vt.pci);
	if (EFI_ERROR(status))
		return status;
	status = gBS->HandleProtocol(vt.pci, &PciIoProtocol, (VOID **)&vt.io);
	if (EFI_ERROR(status))
		return status;
	if (cfg16(PCI_VENDOR_ID) != VN_PCI_VENDOR || cfg16(PCI_DEVICE_ID) != VN_PCI_DEVICE)
		return EFI_UNSUPPORTED;
	vt.io->Pci.Read(vt.io, EfiPciIoWidthUint32, PCI_BAR0, 1, &bar);
	return bar & PCI_BAR_IO ? EFI_SUCCESS : EFI_UNSUPPORTED;
}

/* The image driving the function (holding its PciIo by driver), or NULL. */
static EFI_HANDLE function_driver(void)
{
	EFI_OPEN_PROTOCOL_INFORMATION_ENTRY *info;
	EFI_HANDLE agent = NULL;
	UINTN n, i;

	if (EFI_ERROR(gBS->OpenProtocolInformation(vt.pci, &PciIoProtocol, &info, &n)))
		return NULL;
	for (i = 0; i < n; i++)
		if (info[i].Attributes & (EFI_OPEN_PROTOCOL_BY_DRIVER | EFI_OPEN_PROTOCOL_EXCLUSIVE))
			agent = info[i].AgentHandle;
	FreePool(info);
	return agent;
}

/* Whether the NIC driver is the image that started us (iPXE's ROM). */
static BOOLEAN driver_started_us(EFI_HANDLE image, EFI_HANDLE driver)
{
	EFI_LOADED_IMAGE *li;

	return driver &&
	       !EFI_ERROR(gBS->HandleProtocol(image, &LoadedImageProtocol, (VOID **)&li)) &&
	       li->ParentHandle == driver;
}

/* Give the NIC back to the firmware's drivers (its network stack
 * included) and find the NIC handle, made anew if the driver was stopped. */
static void give_back(struct efi_netinfo *ni)
{
	EFI_DEVICE_PATH *walk = ni->nic_path;
	EFI_HANDLE top = vt.driver_kept ? ni->nic : vt.pci;

	if (!vt.driver_kept)
		vt.io->Attributes(vt.io, EfiPciIoAttributeOperationSet, vt.attributes, NULL);
	vt.taken = FALSE;
	if (EFI_ERROR(gBS->ConnectController(top, NULL, NULL, TRUE))) {
		Print(L"netdisk: the firmware's drivers did not take the NIC back\n");
		return;
	}
	gBS->LocateDevicePath(&SimpleNetworkProtocol, &walk, &ni->nic);
}

/*
 * Disconnect the firmware's network stack (MNP, IP4, UDP4, PXE base code)
 * from the NIC's SNP handle, then the NIC driver (OVMF's VirtioNetDxe) from
 * the PCI function, so nothing but us touches the device.  Not when the
 * NIC driver is the image that started us (iPXE's ROM, which runs us
 * inside its own boot attempt): stopped under its feet it hangs once we
 * return.  Its SNP then has no user left, and nothing polls the device.
 * The SNP handle and its path may go away: the caller's netinfo gets a copy
 * of the path, which the disk's path is built from.
 */
static EFI_STATUS take_over(EFI_HANDLE image, struct efi_netinfo *ni)
{
	EFI_DEVICE_PATH *path = DuplicateDevicePath(ni->nic_path);
	EFI_HANDLE driver;

	if (!path)
		return EFI_OUT_OF_RESOURCES;
	ni->nic_path = path;
	vt.io->Attributes(vt.io, EfiPciIoAttributeOperationGet, 0, &vt.attributes);
	vt.taken = TRUE;
	/* Top down: under OVMF the function's disconnect alone fails
	 * (EFI_NOT_FOUND) while the network stack sits on the SNP handle. */
	gBS->DisconnectController(ni->nic, NULL, NULL);
	driver = function_driver();
	vt.driver_kept = driver_started_us(image, driver);
	if (!vt.driver_kept && driver) {
		gBS->DisconnectController(vt.pci, NULL, NULL);
		if (function_driver()) {
			Print(L"netdisk: the firmware's NIC driver keeps the NIC\n");
			give_back(ni);
			return EFI_ACCESS_DENIED;
		}
	}
	/* A stopped driver put the attributes back as it found them. */
	if (EFI_ERROR(vt.io->Attributes(vt.io, EfiPciIoAttributeOperationEnable,
					EFI_PCI_IO_ATTRIBUTE_IO | EFI_PCI_IO_ATTRIBUTE_BUS_MASTER,
					NULL))) {
		give_back(ni);
		return EFI_UNSUPPORTED;
	}
	msix_off();
	return EFI_SUCCESS;
}

static void set_platform(void)
{
	struct vn_platform *p = &vt.plat;

	p->ctx = NULL;
	p->in8 = io_in8;
	p->in16 = io_in16;
	p->in32 = io_in32;
	p->out8 = io_out8;
	p->out16 = io_out16;
	p->out32 = io_out32;
	p->read16 = mem_read16;
	p->read32 = mem_read32;
	p->write16 = mem_write16;
	p->write32 = mem_write32;
	p->copy_from = mem_copy_from;
	p->copy_to = mem_copy_to;
}

/* Probe, allocate the rings and buffers below 4 GiB, start. */
static EFI_STATUS start_driver(void)
{
	UINT32 size;
	EFI_STATUS status;

	set_platform();
	if (nd_vn_probe(&vt.dev, &vt.plat, RX_BUFS, &size) != VN_OK)
		return EFI_DEVICE_ERROR;
	vt.pages = EFI_SIZE_TO_PAGES(size);
	vt.mem = BELOW_4G;
	status = gBS->AllocatePages(AllocateMaxAddress, EfiBootServicesData, vt.pages, &vt.mem);
	if (EFI_ERROR(status)) {
		nd_vn_reset(&vt.dev);
		return status;
	}
	if (nd_vn_start(&vt.dev, (UINT32)vt.mem, &vt.fd) != VN_OK) {
		nd_vn_reset(&vt.dev);
		gBS->FreePages(vt.mem, vt.pages);
		return EFI_DEVICE_ERROR;
	}
	return EFI_SUCCESS;
}

EFI_STATUS efi_virtio_open(EFI_HANDLE image, struct efi_netinfo *ni, struct nd_framedev **dev)
{
	EFI_STATUS status = find_pci(ni);

	if (EFI_ERROR(status))
		return status;
	status = take_over(image, ni);
	if (EFI_ERROR(status))
		return status;
	status = start_driver();
	if (EFI_ERROR(status)) {
		Print(L"netdisk: own virtio-net driver failed to start: %r\n", status);
		give_back(ni);
		return status;
	}
	*dev = &vt.fd;
	return EFI_SUCCESS;
}

/* ExitBootServices: the pages become the OS's, so all DMA stops now. */
void efi_virtio_stop(void)
{
	if (vt.taken)
		nd_vn_reset(&vt.dev);
}

void efi_virtio_close(struct efi_netinfo *ni)
{
	if (!vt.taken)
		return;
	nd_vn_reset(&vt.dev);
	gBS->FreePages(vt.mem, vt.pages);
	give_back(ni);
}
