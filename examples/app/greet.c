/* A tiny program the example "builds": the build step compiles nothing
 * (busybox has no compiler), it checks and packages this file. */
#include <stdio.h>

int main(void)
{
    puts("hello from a kiln build");
    return 0;
}
