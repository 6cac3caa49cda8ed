/*
 * The test init that `cargo xtask test-boot` puts at /init of the initramfs.
 *
 * It runs as PID 1, proves what only userspace can see (the vDSO works, a
 * versioned module loads, lkdtm's EXEC_RODATA is blocked, ftrace traces a
 * function), prints one line
 * per proof on /dev/console and the success marker, then resets the machine.
 * QEMU runs with -no-reboot, so the reset ends QEMU: a reset works on both
 * arches, whereas x86 without ACPI cannot power off.
 *
 * Freestanding on purpose: no libc is needed on the host to cross-build it,
 * and a tiny kernel (no /proc, no devtmpfs) is enough to run it. Syscalls are
 * raw inline asm for x86_64 and aarch64.
 *
 * Output protocol (parsed by judge.rs / proofs.rs on the host):
 *   XTASK-INIT-START <arch>
 *   XTASK-PROOF <name> PASS|FAIL|SKIP <detail>
 *   XTASK-INIT-OK
 * The init decides SKIP by what the kernel offers (no debugfs, no module in
 * the initramfs); the host decides whether a SKIP is acceptable for the
 * profile.
 *
 * Broken variants for the failure-mode tests (exactly one may be defined):
 *   -DXTASK_BROKEN_EXIT    init returns: the kernel panics "Attempted to kill init"
 *   -DXTASK_BROKEN_HANG    init sleeps forever: the host times out
 *   -DXTASK_BROKEN_SILENT  init resets without printing the success marker
 */

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef long s64;

#define CLOCK_MONOTONIC 1
#define AT_NULL 0
#define AT_SYSINFO_EHDR 33
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_WRONLY 1
#define O_NOCTTY 0400
#define O_CLOEXEC 02000000
#define SIGCHLD 17
#define TCSBRK 0x5409 /* same value on x86_64 and arm64 (asm-generic) */
#define EINTR 4

#define LINUX_REBOOT_MAGIC1 0xfee1deadL
#define LINUX_REBOOT_MAGIC2 672274793L
#define LINUX_REBOOT_CMD_RESTART 0x01234567L

#if defined(__x86_64__)
#define ARCH "x86_64"
#define VDSO_CLOCK_GETTIME "__vdso_clock_gettime"
enum {
	NR_read = 0, NR_write = 1, NR_close = 3, NR_ioctl = 16, NR_nanosleep = 35,
	NR_clone = 56, NR_exit = 60, NR_wait4 = 61, NR_mount = 165,
	NR_reboot = 169, NR_clock_gettime = 228, NR_openat = 257,
	NR_finit_module = 313,
};

static long syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The kernel enters with %rsp at argc, 16-byte aligned. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"  xor %ebp, %ebp\n"
	"  mov %rsp, %rdi\n"
	"  and $-16, %rsp\n"
	"  call start_c\n"
	"  hlt\n");

#elif defined(__aarch64__)
#define ARCH "arm64"
#define VDSO_CLOCK_GETTIME "__kernel_clock_gettime"
enum {
	NR_ioctl = 29, NR_mount = 40, NR_openat = 56, NR_close = 57, NR_read = 63,
	NR_write = 64, NR_exit = 93, NR_nanosleep = 101, NR_clock_gettime = 113,
	NR_reboot = 142, NR_clone = 220, NR_wait4 = 260, NR_finit_module = 273,
};

static long syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

/* The kernel enters with sp at argc. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"  mov x29, #0\n"
	"  mov x30, #0\n"
	"  mov x0, sp\n"
	"  bl start_c\n"
	"  b .\n");
#else
#error "unsupported architecture"
#endif

#define syscall3(n, a, b, c) syscall6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The compiler may emit calls to these even when freestanding. */
void *memset(void *dst, int c, unsigned long n)
{
	volatile u8 *d = dst; /* volatile: keep clang from turning this into memset() */
	while (n--)
		*d++ = (u8)c;
	return dst;
}

void *memcpy(void *dst, const void *src, unsigned long n)
{
	volatile u8 *d = dst;
	const u8 *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static unsigned long str_len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static int str_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Whether `s` starts with `prefix`. */
static int str_eq_prefix(const char *s, const char *prefix)
{
	while (*prefix && *s == *prefix)
		s++, prefix++;
	return !*prefix;
}

/* ---- output ------------------------------------------------------------ */

static int console_fd = 1;

/* A line buffer: each line goes out in one write() so that kernel messages
 * cannot land in the middle of it. */
static char line[512];
static unsigned long line_len;

static void put(const char *s)
{
	while (*s && line_len < sizeof(line) - 2)
		line[line_len++] = *s++;
}

static void put_dec(s64 v)
{
	char buf[24];
	int i = sizeof(buf);
	u64 u = v < 0 ? -(u64)v : (u64)v;
	buf[--i] = 0;
	do
		buf[--i] = '0' + u % 10;
	while ((u /= 10) && i > 1);
	if (v < 0)
		buf[--i] = '-';
	put(&buf[i]);
}

static void put_hex(u64 v)
{
	char buf[19];
	int i = sizeof(buf);
	buf[--i] = 0;
	do
		buf[--i] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) && i > 2);
	buf[--i] = 'x';
	buf[--i] = '0';
	put(&buf[i]);
}

/* Ends the line, writes it and waits until the UART has sent it (tcdrain):
 * without the wait, the reset at the end can drop the last lines. */
static void flush(void)
{
	line[line_len++] = '\n';
	syscall3(NR_write, console_fd, line, line_len);
	syscall3(NR_ioctl, console_fd, TCSBRK, 1);
	line_len = 0;
}

static void say(const char *s)
{
	put(s);
	flush();
}

/* Starts a proof line; the caller appends the detail and calls flush(). */
static void proof(const char *name, const char *status)
{
	put("XTASK-PROOF ");
	put(name);
	put(" ");
	put(status);
	put(" ");
}

/* A negative syscall return as "-22 (EINVAL)": the kernel log says why. */
static void put_ret(long ret)
{
	static const struct {
		int no;
		const char *name;
	} names[] = {
		{1, "EPERM"}, {2, "ENOENT"}, {8, "ENOEXEC"}, {12, "ENOMEM"}, {13, "EACCES"},
		{14, "EFAULT"}, {17, "EEXIST"}, {19, "ENODEV"}, {22, "EINVAL"}, {38, "ENOSYS"},
		{129, "EKEYREJECTED"},
	};
	put_dec(ret);
	for (unsigned long i = 0; ret < 0 && i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].no == -ret) {
			put(" (");
			put(names[i].name);
			put(")");
		}
	}
}

/* ---- vDSO -------------------------------------------------------------- */

typedef struct {
	u8 e_ident[16];
	u16 e_type, e_machine;
	u32 e_version;
	u64 e_entry, e_phoff, e_shoff;
	u32 e_flags;
	u16 e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf64_Ehdr;

typedef struct {
	u32 p_type, p_flags;
	u64 p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

typedef struct {
	s64 d_tag;
	u64 d_val;
} Elf64_Dyn;

typedef struct {
	u32 st_name;
	u8 st_info, st_other;
	u16 st_shndx;
	u64 st_value, st_size;
} Elf64_Sym;

#define PT_LOAD 1
#define PT_DYNAMIC 2
#define DT_NULL 0
#define DT_HASH 4
#define DT_STRTAB 5
#define DT_SYMTAB 6
#define DT_GNU_HASH 0x6ffffef5

struct timespec {
	s64 tv_sec, tv_nsec;
};

typedef int (*clock_gettime_fn)(int, struct timespec *);

/* Number of dynamic symbols from DT_GNU_HASH: one past the highest symbol
 * index reachable through the buckets and their chains. */
static u32 gnu_hash_nsyms(const u32 *h)
{
	u32 nbuckets = h[0], symoffset = h[1], bloom_size = h[2];
	const u32 *buckets = h + 4 + bloom_size * 2; /* 64-bit bloom words */
	const u32 *chain = buckets + nbuckets;
	u32 max = 0;
	for (u32 i = 0; i < nbuckets; i++)
		if (buckets[i] > max)
			max = buckets[i];
	if (max < symoffset)
		return symoffset;
	while (!(chain[max - symoffset] & 1))
		max++;
	return max + 1;
}

/* Finds `name` in the vDSO's dynamic symbol table (version ignored), the way
 * tools/testing/selftests/vDSO/parse_vdso.c does. */
static void *vdso_sym(u64 base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	u64 load_offset = 0, dyn_addr = 0;
	int found_load = 0;

	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !found_load) {
			found_load = 1;
			load_offset = base + ph[i].p_offset - ph[i].p_vaddr;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn_addr = base + ph[i].p_offset;
		}
	}
	if (!found_load || !dyn_addr)
		return 0;

	const Elf64_Sym *symtab = 0;
	const char *strtab = 0;
	const u32 *hash = 0, *gnu_hash = 0;
	for (const Elf64_Dyn *d = (const Elf64_Dyn *)dyn_addr; d->d_tag != DT_NULL; d++) {
		u64 p = d->d_val + load_offset;
		switch (d->d_tag) {
		case DT_SYMTAB: symtab = (const Elf64_Sym *)p; break;
		case DT_STRTAB: strtab = (const char *)p; break;
		case DT_HASH: hash = (const u32 *)p; break;
		case DT_GNU_HASH: gnu_hash = (const u32 *)p; break;
		}
	}
	if (!symtab || !strtab || (!hash && !gnu_hash))
		return 0;

	u32 nsyms = hash ? hash[1] /* nchain */ : gnu_hash_nsyms(gnu_hash);
	for (u32 i = 0; i < nsyms; i++) {
		const Elf64_Sym *s = &symtab[i];
		if (s->st_shndx != 0 && str_eq(strtab + s->st_name, name))
			return (void *)(s->st_value + load_offset);
	}
	return 0;
}

static void prove_vdso(u64 *auxv)
{
	u64 base = 0;
	for (u64 *a = auxv; a[0] != AT_NULL; a += 2)
		if (a[0] == AT_SYSINFO_EHDR)
			base = a[1];
	if (!base) {
		proof("vdso", "FAIL");
		say("no AT_SYSINFO_EHDR in auxv");
		return;
	}
	clock_gettime_fn cg = (clock_gettime_fn)vdso_sym(base, VDSO_CLOCK_GETTIME);
	if (!cg) {
		proof("vdso", "FAIL");
		put(VDSO_CLOCK_GETTIME " not found in the vDSO at ");
		put_hex(base);
		flush();
		return;
	}

	/* vDSO, syscall, vDSO: a working vDSO clock brackets the kernel's own. */
	struct timespec t1 = {0, 0}, t2 = {0, 0}, t3 = {0, 0};
	int r1 = cg(CLOCK_MONOTONIC, &t1);
	long r2 = syscall3(NR_clock_gettime, CLOCK_MONOTONIC, &t2, 0);
	int r3 = cg(CLOCK_MONOTONIC, &t3);
	s64 n1 = t1.tv_sec * 1000000000L + t1.tv_nsec;
	s64 n2 = t2.tv_sec * 1000000000L + t2.tv_nsec;
	s64 n3 = t3.tv_sec * 1000000000L + t3.tv_nsec;
	int ok = r1 == 0 && r2 == 0 && r3 == 0 && n1 > 0 && n1 <= n2 && n2 <= n3;

	proof("vdso", ok ? "PASS" : "FAIL");
	put(VDSO_CLOCK_GETTIME "(CLOCK_MONOTONIC) at ");
	put_hex((u64)cg);
	put(": ");
	put_dec(n1);
	put(" ns, syscall ");
	put_dec(n2);
	put(" ns, vdso again ");
	put_dec(n3);
	put(" ns");
	if (r1 || r3) {
		put(", vdso returned ");
		put_dec(r1 ? r1 : r3);
	}
	flush();
}

/* ---- modules ----------------------------------------------------------- */

/* The host lists the modules to load, one file name per line, in
 * /lib/modules/order; they live next to it. */
static void prove_modules(void)
{
	static char list[1024];
	int fd = syscall3(NR_openat, AT_FDCWD, "/lib/modules/order", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		proof("modversions", "SKIP");
		say("no /lib/modules/order in the initramfs");
		return;
	}
	long n = syscall3(NR_read, fd, list, sizeof(list) - 1);
	syscall3(NR_close, fd, 0, 0);
	if (n <= 0) {
		proof("modversions", "SKIP");
		say("/lib/modules/order is empty");
		return;
	}
	list[n] = 0;

	/* Load all first (the kernel logs about each), then report one line. */
	static char path[256];
	static long results[16];
	static const char *names[16];
	int count = 0, failed = 0;
	for (char *p = list; *p && count < 16;) {
		char *name = p;
		while (*p && *p != '\n')
			p++;
		if (*p)
			*p++ = 0;
		if (!*name)
			continue;
		unsigned long len = str_len("/lib/modules/");
		memcpy(path, "/lib/modules/", len);
		unsigned long nlen = str_len(name);
		if (len + nlen + 1 > sizeof(path))
			nlen = sizeof(path) - len - 1;
		memcpy(path + len, name, nlen);
		path[len + nlen] = 0;

		long ret = syscall3(NR_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		if (ret >= 0) {
			int mfd = ret;
			ret = syscall6(NR_finit_module, mfd, (long)"", 0, 0, 0, 0);
			syscall3(NR_close, mfd, 0, 0);
		}
		names[count] = name;
		results[count++] = ret;
		failed |= ret != 0;
	}

	proof("modversions", failed ? "FAIL" : "PASS");
	for (int i = 0; i < count; i++) {
		if (i)
			put(", ");
		put("finit_module(");
		put(names[i]);
		put(") = ");
		put_ret(results[i]);
	}
	flush();
}

/* ---- lkdtm ------------------------------------------------------------- */

/* lkdtm's EXEC_RODATA calls a function placed in .rodata. With W^X working
 * the kernel oopses and kills the writing task; that must be a child, since
 * killing PID 1 would panic. panic_on_oops must be off (the default). */
static void prove_lkdtm(void)
{
	const char *direct = "/debugfs/provoke-crash/DIRECT";
	long ret = syscall6(NR_mount, (long)"debugfs", (long)"/debugfs", (long)"debugfs", 0, 0, 0);
	if (ret < 0) {
		proof("lkdtm_exec_rodata", "SKIP");
		put("mount debugfs: ");
		put_ret(ret);
		flush();
		return;
	}
	int fd = syscall3(NR_openat, AT_FDCWD, direct, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		proof("lkdtm_exec_rodata", "SKIP");
		put("open ");
		put(direct);
		put(": ");
		put_ret(fd);
		flush();
		return;
	}

	long pid = syscall6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if (pid == 0) {
		const char cmd[] = "EXEC_RODATA\n";
		long w = syscall3(NR_write, fd, cmd, sizeof(cmd) - 1);
		/* Reaching this line means the kernel ran code from .rodata. */
		syscall3(NR_exit, w < 0 ? 2 : 1, 0, 0);
	}
	syscall3(NR_close, fd, 0, 0);
	if (pid < 0) {
		proof("lkdtm_exec_rodata", "FAIL");
		put("clone: ");
		put_ret(pid);
		flush();
		return;
	}

	int status = 0;
	do
		ret = syscall6(NR_wait4, pid, (long)&status, 0, 0, 0, 0);
	while (ret == -EINTR);
	int sig = status & 0x7f;
	if (ret == pid && sig != 0 && sig != 0x7f) {
		proof("lkdtm_exec_rodata", "PASS");
		put("the writer of EXEC_RODATA was killed by signal ");
		put_dec(sig);
		put(": executing .rodata was blocked");
	} else if (ret == pid) {
		proof("lkdtm_exec_rodata", "FAIL");
		put((status >> 8) == 2 ? "the write to DIRECT failed" : "the write returned: rodata was executable");
		put(" (exit status ");
		put_dec(status >> 8);
		put(")");
	} else {
		proof("lkdtm_exec_rodata", "FAIL");
		put("wait4: ");
		put_ret(ret);
	}
	flush();
}

/* ---- ftrace ------------------------------------------------------------ */

/* Writes `text` to the tracefs file `path`: 0, or the failing step's return. */
static long write_file(const char *path, const char *text)
{
	long fd = syscall3(NR_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long ret = syscall3(NR_write, fd, text, str_len(text));
	syscall3(NR_close, fd, 0, 0);
	return ret < 0 ? ret : 0;
}

static void ftrace_fail(const char *what, long ret)
{
	proof("ftrace_call", "FAIL");
	put(what);
	put(": ");
	put_ret(ret);
	flush();
}

/* Traces one function and finds it in the trace. set_ftrace_filter takes
 * only a function ftrace has a patch site for (x86's __mcount_loc from
 * objtool, arm64's patchable function entries), so both the table and the
 * patching are proved. The function is seq_read, which reading a tracefs
 * file reaches through its file_operations: a call through a pointer, which
 * no inlining under LTO can take away from the patched copy (full LTO
 * inlines the getppid syscall's entry into x86's x64_sys_call, for one).
 * An oops turns tracing off (oops_enter), so tracing_on is set first, and
 * this runs before lkdtm's proof, which oopses on purpose. */
#define TRACED "seq_read"
static void prove_ftrace(void)
{
	static char trace[65536];
	long ret = syscall6(NR_mount, (long)"tracefs", (long)"/tracing", (long)"tracefs", 0, 0, 0);
	if (ret < 0) {
		proof("ftrace_call", "SKIP");
		put("mount tracefs: ");
		put_ret(ret);
		flush();
		return;
	}
	if ((ret = write_file("/tracing/set_ftrace_filter", TRACED "\n")) < 0) {
		ftrace_fail("set_ftrace_filter " TRACED " (no patch site?)", ret);
		return;
	}
	if ((ret = write_file("/tracing/tracing_on", "1\n")) < 0) {
		ftrace_fail("tracing_on 1", ret);
		return;
	}
	if ((ret = write_file("/tracing/current_tracer", "function\n")) < 0) {
		ftrace_fail("current_tracer function", ret);
		return;
	}
	/* The traced call: reading available_tracers goes through seq_read. */
	long fd = syscall3(NR_openat, AT_FDCWD, "/tracing/available_tracers", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ftrace_fail("open /tracing/available_tracers", fd);
		return;
	}
	ret = syscall3(NR_read, fd, trace, sizeof(trace) - 1);
	syscall3(NR_close, fd, 0, 0);
	if (ret < 0) {
		ftrace_fail("read /tracing/available_tracers", ret);
		return;
	}
	if ((ret = write_file("/tracing/tracing_on", "0\n")) < 0) {
		ftrace_fail("tracing_on 0", ret);
		return;
	}
	fd = syscall3(NR_openat, AT_FDCWD, "/tracing/trace", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ftrace_fail("open /tracing/trace", fd);
		return;
	}
	unsigned long len = 0;
	while (len < sizeof(trace) - 1) {
		ret = syscall3(NR_read, fd, trace + len, sizeof(trace) - 1 - len);
		if (ret <= 0)
			break;
		len += ret;
	}
	syscall3(NR_close, fd, 0, 0);
	trace[len] = 0;

	/* The first line that is not a `#` comment and names the function. */
	for (char *l = trace; *l;) {
		char *end = l;
		while (*end && *end != '\n')
			end++;
		char saved = *end;
		*end = 0;
		int hit = 0;
		for (char *p = l; *l != '#' && *p && !hit; p++)
			hit = str_eq_prefix(p, TRACED);
		if (hit) {
			while (*l == ' ')
				l++;
			proof("ftrace_call", "PASS");
			put("traced: ");
			put(l);
			flush();
			return;
		}
		*end = saved;
		l = saved ? end + 1 : end;
	}
	proof("ftrace_call", "FAIL");
	put("available_tracers was read, but the trace (");
	put_dec(len);
	put(" bytes) has no " TRACED " line");
	flush();
}

/* ---- main -------------------------------------------------------------- */

static void reset(void)
{
	syscall6(NR_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, 0, 0, 0);
}

static void sleep_forever(void)
{
	struct timespec t = {3600, 0};
	for (;;)
		syscall3(NR_nanosleep, &t, 0, 0);
}

__attribute__((used)) void start_c(long *sp)
{
	long argc = sp[0];
	char **envp = (char **)(sp + 1 + argc + 1);
	while (*envp)
		envp++;
	u64 *auxv = (u64 *)(envp + 1);

	/* The kernel may have opened /dev/console as fds 0-2 already, but not
	 * if it failed to; open it ourselves so that there is one writer. */
	int fd = syscall3(NR_openat, AT_FDCWD, "/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0)
		console_fd = fd;

	say("XTASK-INIT-START " ARCH);

#if defined(XTASK_BROKEN_EXIT)
	say("xtask: broken init (exit): returning from PID 1");
	syscall3(NR_exit, 0, 0, 0);
#elif defined(XTASK_BROKEN_HANG)
	say("xtask: broken init (hang): sleeping forever");
	sleep_forever();
#elif defined(XTASK_BROKEN_SILENT)
	say("xtask: broken init (silent): resetting without the marker");
	reset();
	sleep_forever();
#endif

	prove_vdso(auxv);
	prove_modules();
	prove_ftrace();
	prove_lkdtm();

	say("XTASK-INIT-OK");
	reset();
	/* Only reached if the reset failed: the host times out. */
	say("xtask: reboot() returned");
	sleep_forever();
}
