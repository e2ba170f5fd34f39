/* Prints the number of the event scap-open prints for the load test's markers (mkdir's
 * exit event), as the driver tree being tested numbers it. */
#include <stdio.h>
#include "ppm_events_public.h"

int main(void) {
	printf("%d\n", (int)PPME_SYSCALL_MKDIR_2_X);
	return 0;
}
