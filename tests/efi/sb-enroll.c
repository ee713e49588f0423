/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Secure Boot test app: in setup mode enrols \db.auth, \KEK.auth, \PK.auth from the file system holding them; otherwise tries to load the test images of \EFI\SBTEST ("SBLOAD" lines); reports the Secure Boot state ("SBSTATE") and powers off. */
#include <efi.h>
#include <efilib.h>

/* EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx); gnu-efi does not define it. */
static EFI_GUID image_security_guid = { 0xd719b2cb, 0x3d3a, 0x4596,
					{ 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f } };

#define AUTH_ATTRS (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS | \
		    EFI_VARIABLE_RUNTIME_ACCESS | EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS)

/* One byte of the global variable `name`, or -1 when it cannot be read. */
static INTN read_flag(CHAR16 *name)
{
	UINT8 value = 0;
	UINTN size = sizeof(value);
	EFI_GUID global = EFI_GLOBAL_VARIABLE;

	if (EFI_ERROR(gRT->GetVariable(name, &global, NULL, &size, &value)))
		return -1;
	return value;
}

/* Read the whole file `path` of `root` into a new pool buffer. */
static EFI_STATUS read_file(EFI_FILE_HANDLE root, CHAR16 *path, VOID **buf, UINTN *size)
{
	EFI_FILE_HANDLE file;
	EFI_FILE_INFO *info;
	EFI_STATUS status = root->Open(root, &file, path, EFI_FILE_MODE_READ, 0);

	if (EFI_ERROR(status))
		return status;
	info = LibFileInfo(file);
	status = EFI_OUT_OF_RESOURCES;
	if (info) {
		*size = info->FileSize;
		FreePool(info);
		*buf = AllocatePool(*size ? *size : 1);
		if (*buf) {
			status = file->Read(file, size, *buf);
			if (EFI_ERROR(status))
				FreePool(*buf);
		}
	}
	file->Close(file);
	return status;
}

/* Write the authenticated variable `name` from the .auth file `path`; reports the outcome. */
static EFI_STATUS enrol(EFI_FILE_HANDLE root, CHAR16 *path, CHAR16 *name, EFI_GUID *guid)
{
	VOID *buf;
	UINTN size;
	EFI_STATUS status = read_file(root, path, &buf, &size);

	if (EFI_ERROR(status)) {
		Print(L"SBENROLL FAIL read %s: %r\n", path, status);
		return status;
	}
	status = gRT->SetVariable(name, guid, AUTH_ATTRS, size, buf);
	FreePool(buf);
	if (EFI_ERROR(status))
		Print(L"SBENROLL FAIL SetVariable(%s): %r\n", name, status);
	else
		Print(L"SBENROLL %s ok\n", name);
	return status;
}

/* The root of the first file system holding \PK.auth (the app may come over PXE). */
static EFI_FILE_HANDLE find_keys(void)
{
	EFI_HANDLE *handles;
	EFI_FILE_HANDLE root = NULL, file;
	UINTN count, i;

	/* A PXE-booted app finds disks not yet connected: connect everything. */
	if (!EFI_ERROR(gBS->LocateHandleBuffer(AllHandles, NULL, NULL, &count, &handles))) {
		for (i = 0; i < count; i++)
			gBS->ConnectController(handles[i], NULL, NULL, TRUE);
		FreePool(handles);
	}
	if (EFI_ERROR(gBS->LocateHandleBuffer(ByProtocol, &FileSystemProtocol, NULL, &count, &handles)))
		return NULL;
	for (i = 0; i < count && !root; i++) {
		root = LibOpenRoot(handles[i]);
		if (root && EFI_ERROR(root->Open(root, &file, L"\\PK.auth", EFI_FILE_MODE_READ, 0))) {
			root->Close(root);
			root = NULL;
		} else if (root) {
			file->Close(file);
		}
	}
	FreePool(handles);
	return root;
}

/* Enrol db, then KEK, then PK (writing PK ends setup mode). */
static void enrol_all(void)
{
	EFI_GUID global = EFI_GLOBAL_VARIABLE;
	EFI_FILE_HANDLE root = find_keys();

	if (!root) {
		Print(L"SBENROLL FAIL no file system holds \\PK.auth\n");
		return;
	}
	if (!EFI_ERROR(enrol(root, L"\\db.auth", L"db", &image_security_guid)) &&
	    !EFI_ERROR(enrol(root, L"\\KEK.auth", L"KEK", &global)) &&
	    !EFI_ERROR(enrol(root, L"\\PK.auth", L"PK", &global)))
		Print(L"SBENROLL done\n");
	root->Close(root);
}

/*
 * Started by netdisk.efi from the served disk with Secure Boot enforced: ask
 * the firmware to load each test image of \EFI\SBTEST on the disk this app
 * came from, through its device path as a boot loader would, and report what
 * LoadImage says ("SBLOAD NAME STATUS").  Nothing loaded is started.
 */
static void try_loads(EFI_HANDLE image)
{
	static CHAR16 *names[] = { L"SIGNED", L"UNSIGNED", L"TAMPERED", L"WRONGKEY" };
	CHAR16 path[64];
	EFI_LOADED_IMAGE *self;
	EFI_DEVICE_PATH *file;
	EFI_HANDLE loaded;
	EFI_STATUS status;
	UINTN i;

	if (EFI_ERROR(gBS->HandleProtocol(image, &LoadedImageProtocol, (VOID **)&self)))
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		SPrint(path, sizeof(path), L"\\EFI\\SBTEST\\%s.EFI", names[i]);
		file = FileDevicePath(self->DeviceHandle, path);
		if (!file)
			continue;
		loaded = NULL;
		status = gBS->LoadImage(FALSE, image, file, NULL, 0, &loaded);
		FreePool(file);
		Print(L"SBLOAD %s %r\n", names[i], status);
		/* A Security Violation still leaves a handle to unload. */
		if (loaded)
			gBS->UnloadImage(loaded);
	}
}

/* gnu-efi's crt0 calls this with the SysV convention: no EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	InitializeLib(image, systab);
	Print(L"SBSTATE SecureBoot=%d SetupMode=%d\n", read_flag(L"SecureBoot"),
	      read_flag(L"SetupMode"));
	if (read_flag(L"SetupMode") == 1) {
		enrol_all();
		Print(L"SBSTATE after enrolment SetupMode=%d\n", read_flag(L"SetupMode"));
	} else {
		try_loads(image);
	}
	gRT->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
	return EFI_SUCCESS;
}
