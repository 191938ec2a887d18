/*
 * bcryptprimitives.dll for Wine versions that lack ProcessPrng (Debian 12's Wine 8.0). Go 1.22 and
 * later fill their random numbers with ProcessPrng and stop at start-up without it. This one
 * exports ProcessPrng over advapi32's SystemFunction036 (RtlGenRandom), which Wine has.
 * Built by the test with: x86_64-w64-mingw32-gcc -shared -o bcryptprimitives.dll processprng.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
