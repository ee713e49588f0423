/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Console of the BIOS stub: every message goes to the screen (INT 10h) and to COM1. */

#include <stdarg.h>
#include "bios.h"

#define COM1 0x3f8

/* 115200 baud, 8N1, FIFO on: what QEMU's -serial and most consoles expect. */
void con_init(void)
{
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x80);
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);
	outb(COM1 + 2, 0x07);
	outb(COM1 + 4, 0x03);
}

static void serial_putc(char ch)
{
	unsigned spin;

	/* A missing UART reads back 0xff; do not wait forever for it. */
	for (spin = 0; spin < 100000 && !(inb(COM1 + 5) & 0x20); spin++)
		;
	outb(COM1, (uint8_t)ch);
}

static void screen_putc(char ch)
{
	struct bregs r;

	memset(&r, 0, sizeof(r));
	r.eax = 0x0e00 | (uint8_t)ch;
	r.ebx = 0x0007;
	bios_int(0x10, &r);
}

/* Set once the OS loader owns the screen: progress then goes to COM1 only. */
int con_serial_only;

static void con_putc(char ch)
{
	if (ch == '\n') {
		serial_putc('\r');
		if (!con_serial_only)
			screen_putc('\r');
	}
	serial_putc(ch);
	if (!con_serial_only)
		screen_putc(ch);
}

static void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

static void con_putnum(uint32_t v, unsigned base)
{
	char buf[12];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i)
		con_putc(buf[--i]);
}

/* printf subset: %s %u %d %x %c, and %I for an IPv4 address given as uint8_t[4]. */
void con_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		const uint8_t *ip;
		int i;

		if (*fmt != '%') {
			con_putc(*fmt);
			continue;
		}
		switch (*++fmt) {
		case 's':
			con_puts(va_arg(ap, const char *));
			break;
		case 'u':
			con_putnum(va_arg(ap, uint32_t), 10);
			break;
		case 'd':
			i = va_arg(ap, int);
			if (i < 0)
				con_putc('-');
			con_putnum(i < 0 ? 0u - (uint32_t)i : (uint32_t)i, 10);
			break;
		case 'x':
			con_putnum(va_arg(ap, uint32_t), 16);
			break;
		case 'c':
			con_putc((char)va_arg(ap, int));
			break;
		case 'I':
			ip = va_arg(ap, const uint8_t *);
			for (i = 0; i < 4; i++) {
				if (i)
					con_putc('.');
				con_putnum(ip[i], 10);
			}
			break;
		default:
			con_putc(*fmt);
			break;
		}
	}
	va_end(ap);
}
