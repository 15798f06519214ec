#ifndef KILN_LLB_H
#define KILN_LLB_H
#include <kiln/kiln.h>
#endif
