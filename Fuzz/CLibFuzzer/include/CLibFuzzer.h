#ifndef ATRIUM_CLIBFUZZER_H
#define ATRIUM_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for programs that have a main of their own (SwiftPM gives every
/// executable one). Defined by libFuzzer when the program is linked with -sanitize=fuzzer.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
