/*-------------------------------------------------------------------------
 *
 * asan-preload.c
 *	  A library preloaded after libasan into the server of the sanitized
 *	  tests (test/run-sanitized), so that postgres starts at all.
 *
 * postgres is not built with AddressSanitizer: its runtime is preloaded
 * (LD_PRELOAD), and the dynamic loader runs the constructors of postgres's
 * own libraries before libasan's.  libgpg-error's (pulled in through
 * GnuTLS, LDAP and Kerberos) calls bindtextdomain(), which holds gettext's
 * lock while it calls malloc(); that first malloc() initializes the ASan
 * runtime, whose initialization looks up "swift_demangle" with dlsym() and
 * clears the failure with dlerror() -- and dlerror() translates its message,
 * taking gettext's lock again.  The lock's state is then corrupt and the
 * next bindtextdomain() (postgres's own, in main) waits for ever.
 *
 * With this library loaded, swift_demangle exists, dlsym() succeeds and
 * dlerror() has nothing to translate.  ASan asks it to demangle only names
 * in Swift's mangling, which a C server has none of; it declines anyway.
 *
 * IDENTIFICATION
 *	  test/asan-preload.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

char	   *swift_demangle(const char *mangled, size_t mangled_len,
						   char *out, size_t *out_len, uint32_t flags);

char *
swift_demangle(const char *mangled, size_t mangled_len,
			   char *out, size_t *out_len, uint32_t flags)
{
	return NULL;
}
