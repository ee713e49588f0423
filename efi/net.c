/* The stub's transport: own IPv4/UDP on the NIC's SNP when it is usable, else the firmware's UDP4. */
#include "netdisk.h"

static enum { NET_NONE, NET_SNP, NET_UDP4 } in_use;

static uint32_t net_now(void *ctx)
{
	return nd_clock_ms();
}

/* The transports fill in send and recv; the clock is the same for both. */
EFI_STATUS nd_net_open(const struct nd_netinfo *ni, struct nd_transport *tp)
{
	EFI_STATUS status;

	tp->ctx = NULL;
	tp->now_ms = net_now;
	if (!EFI_ERROR(nd_snp_open(ni, nd_clock_entropy(), tp))) {
		in_use = NET_SNP;
		return EFI_SUCCESS;
	}
	Print(L"netdisk: SNP not usable, falling back to the firmware's UDP4\n");
	status = nd_udp4_open(ni, tp);
	if (!EFI_ERROR(status))
		in_use = NET_UDP4;
	return status;
}

const char *nd_net_name(void)
{
	return in_use == NET_SNP ? "SNP (own IPv4/UDP)" : "UDP4 (firmware)";
}

/* Only SNP needs the firmware's own network stack kept still; UDP4 is that
 * stack and needs its timers.  TPL_CALLBACK stands for "nothing raised". */
EFI_TPL nd_net_hold(void)
{
	return in_use == NET_SNP ? nd_snp_hold() : TPL_CALLBACK;
}

void nd_net_release(EFI_TPL tpl)
{
	nd_snp_release(tpl);
}

void nd_net_stop(void)
{
	nd_snp_stop();
	nd_udp4_stop();
}

void nd_net_close(void)
{
	if (in_use == NET_SNP)
		nd_snp_close();
	else if (in_use == NET_UDP4)
		nd_udp4_close();
	in_use = NET_NONE;
}
