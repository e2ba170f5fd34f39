/* Linked into scap-open: its stdout goes to a file in the guest, and the guest's script
 * waits for "Live capture in progress" before it makes the marker syscalls, so every line
 * must reach the file when printed, not when a block fills. */
#include <stdio.h>

__attribute__((constructor)) static void line_buffered_stdout(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
}
