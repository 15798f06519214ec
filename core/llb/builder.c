/* The definition builder (include/kiln/llb.h). */
#include "llb/graph.h"
