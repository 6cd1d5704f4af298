// A disk for the chaos harness that remembers what was made durable, so that
// a power loss can be played back after a SIGKILL (which alone loses nothing:
// the page cache survives a process). Loaded with LD_PRELOAD into a node:
//
//   CHAOS_DISK_JOURNAL=FILE  after every successful fsync/fdatasync of a
//                             regular file, "SIZE PATH" is appended to FILE;
//                             the harness cuts each write-ahead log back to
//                             its last recorded size to play a power loss
//   CHAOS_DISK_LIES=1        fsync/fdatasync succeed without syncing or
//                             recording anything: a broken build whose
//                             durability mode claims sync. The harness's
//                             power loss then drops acknowledged writes, which
//                             the checker must catch.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int lies(void) {
  const char* v = getenv("CHAOS_DISK_LIES");
  return v != NULL && strcmp(v, "1") == 0;
}

// One line per sync, written with a single write() on an O_APPEND descriptor,
// so that lines of concurrent syncs never interleave.
static void record(int fd) {
  const char* journal = getenv("CHAOS_DISK_JOURNAL");
  struct stat st;
  if (journal == NULL || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  char link[64];
  char path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return;
  path[n] = '\0';
  char line[PATH_MAX + 32];
  const int len = snprintf(line, sizeof line, "%lld %s\n", (long long)st.st_size, path);
  const int out = open(journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0) return;
  if (len > 0 && (size_t)len < sizeof line) (void)!write(out, line, (size_t)len);
  close(out);
}

static int synced(int fd, int result) {
  if (result == 0) record(fd);
  return result;
}

int fsync(int fd) {
  if (lies()) return 0;
  return synced(fd, (int)syscall(SYS_fsync, fd));
}

int fdatasync(int fd) {
  if (lies()) return 0;
  return synced(fd, (int)syscall(SYS_fdatasync, fd));
}
