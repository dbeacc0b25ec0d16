// A stand-in for libcuda.so.1 for the tests of a machine without a GPU: every function of jtune's allowlist,
// with the driver API's C signatures, over host memory. Device pointers are malloc'd host addresses, so copies
// and memsets really move bytes; modules and functions are named handles; a launch runs nothing but records
// the kernel's name, grid, block, shared memory and its first argument slots for the test to inspect.
// Each GPU has its own primary context, current per thread as with the driver; memory, copies, module loads,
// stream and event creation and launches fail with CUDA_ERROR_INVALID_CONTEXT on a thread with none.
// Controls (fake_*) set the results that the probing path sees.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static int init_result = 0, driver_version = 13000, device_count = 1, cc_major = 9, cc_minor = 0;
static int bad_ptx = 0;
static long long allocated = 0;

void fake_configure(int initResult, int driverVersion, int deviceCount, int major, int minor, int badPtx) {
    init_result = initResult;
    driver_version = driverVersion;
    device_count = deviceCount;
    cc_major = major;
    cc_minor = minor;
    bad_ptx = badPtx;
}

long long fake_allocated(void) { return allocated; }

static struct {
    char name[64];
    unsigned grid[3], block[3], shared;
    void** params;
    int count;
} last;

// The last launch: name into `name` (64 bytes), grid[3], block[3], shared; returns the number of launches so far.
int fake_last_launch(char* name, unsigned* grid, unsigned* block, unsigned* shared) {
    memcpy(name, last.name, 64);
    memcpy(grid, last.grid, sizeof last.grid);
    memcpy(block, last.block, sizeof last.block);
    *shared = last.shared;
    return last.count;
}

// The 8 bytes that parameter pointer i of the last launch points at (the caller keeps i below the kernel's
// parameter count; jtune's argument block outlives the launch).
unsigned long long fake_last_argument(int i) {
    unsigned long long v;
    memcpy(&v, last.params[i], 8);
    return v;
}

static const char* names[][2] = {
    {"CUDA_SUCCESS", "no error"},
    {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {"CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
};

static int code_index(CUresult r) {
    switch (r) {
        case 0: return 0;
        case 1: return 1;
        case 2: return 2;
        case 100: return 3;
        case 201: return 4;
        case 218: return 5;
        case 500: return 6;
        default: return -1;
    }
}

CUresult cuGetErrorName(CUresult error, const char** p) {
    int i = code_index(error);
    if (i < 0) { *p = NULL; return 1; }
    *p = names[i][0];
    return 0;
}

CUresult cuGetErrorString(CUresult error, const char** p) {
    int i = code_index(error);
    if (i < 0) { *p = NULL; return 1; }
    *p = names[i][1];
    return 0;
}

CUresult cuInit(unsigned flags) { return flags == 0 ? init_result : 1; }
CUresult cuDriverGetVersion(int* v) { *v = driver_version; return 0; }
CUresult cuDeviceGetCount(int* n) { *n = device_count; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { if (ordinal >= device_count) return 1; *d = 1000 + ordinal; return 0; }
CUresult cuDeviceGetName(char* name, int len, int dev) { snprintf(name, len, "Fake GPU %d", dev - 1000); return 0; }

CUresult cuDeviceGetAttribute(int* v, int attribute, int dev) {
    switch (attribute) {
        case 16: *v = 4; return 0;        // multiprocessors
        case 75: *v = cc_major; return 0;
        case 76: *v = cc_minor; return 0;
        case 97: *v = 227 * 1024; return 0; // shared memory opt-in
        default: return 1;
    }
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, int dev) { *bytes = (size_t)8 << 30; return 0; }

static int context_tags[8];
static _Thread_local int current_device = -1;
#define NEEDS_CONTEXT if (current_device < 0) return 201

CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) { *ctx = &context_tags[(dev - 1000) & 7]; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { return 0; }

CUresult cuCtxSetCurrent(void* ctx) {
    for (int i = 0; i < 8; i++) {
        if (ctx == &context_tags[i]) { current_device = i; return 0; }
    }
    return 1;
}

// The ordinal of the GPU whose context is current on the calling thread, or -1.
int fake_current_device(void) { return current_device; }

static int stream_tag, event_tag;
CUresult cuStreamCreate(void** s, unsigned flags) { NEEDS_CONTEXT; *s = &stream_tag; return 0; }
CUresult cuStreamDestroy_v2(void* s) { return s == &stream_tag ? 0 : 1; }
CUresult cuStreamSynchronize(void* s) { return 0; }
CUresult cuEventCreate(void** e, unsigned flags) { NEEDS_CONTEXT; *e = &event_tag; return 0; }
CUresult cuEventRecord(void* e, void* s) { return 0; }
CUresult cuEventSynchronize(void* e) { return 0; }
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { *ms = 1.5f; return 0; }
CUresult cuEventDestroy_v2(void* e) { return 0; }

// Blocks are 256-byte aligned, as the driver's are; the size sits in the 256 bytes before the block.
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    NEEDS_CONTEXT;
    if (bytes == 0) return 1;
    void* m = aligned_alloc(256, 256 + (bytes + 255) / 256 * 256);
    if (!m) return 2;
    *(size_t*)m = bytes;
    allocated += bytes;
    *p = (CUdeviceptr)(uintptr_t)((char*)m + 256);
    return 0;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
    NEEDS_CONTEXT;
    char* m = (char*)(uintptr_t)p - 256;
    allocated -= *(size_t*)m;
    free(m);
    return 0;
}

CUresult cuMemGetInfo_v2(size_t* free_, size_t* total) {
    NEEDS_CONTEXT;
    *free_ = (size_t)7 << 30;
    *total = (size_t)8 << 30;
    return 0;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) {
    NEEDS_CONTEXT;
    memcpy((void*)(uintptr_t)d, s, n);
    return 0;
}
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) {
    NEEDS_CONTEXT;
    memcpy(d, (void*)(uintptr_t)s, n);
    return 0;
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) {
    NEEDS_CONTEXT;
    memmove((void*)(uintptr_t)d, (void*)(uintptr_t)s, n);
    return 0;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void* st) { return cuMemcpyHtoD_v2(d, s, n); }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void* st) { return cuMemcpyDtoH_v2(d, s, n); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void* st) { return cuMemcpyDtoD_v2(d, s, n); }

CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned v, size_t n) {
    NEEDS_CONTEXT;
    unsigned* p = (unsigned*)(uintptr_t)d;
    for (size_t i = 0; i < n; i++) p[i] = v;
    return 0;
}

CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, void* st) { return cuMemsetD32_v2(d, v, n); }

// Options as jtune passes them: info log buffer and size, error log buffer and size, verbose.
CUresult cuModuleLoadDataEx(void** module, const void* image, unsigned n, int* options, void** values) {
    NEEDS_CONTEXT;
    char* info = NULL;
    char* error = NULL;
    unsigned infoSize = 0, errorSize = 0;
    for (unsigned i = 0; i < n; i++) {
        switch (options[i]) {
            case 3: info = (char*)values[i]; break;
            case 4: infoSize = (unsigned)(uintptr_t)values[i]; break;
            case 5: error = (char*)values[i]; break;
            case 6: errorSize = (unsigned)(uintptr_t)values[i]; break;
        }
    }
    if (bad_ptx) {
        if (error && errorSize) snprintf(error, errorSize, "ptxas fatal: line 1: fake syntax error");
        return 218;
    }
    if (info && infoSize) snprintf(info, infoSize, "fake JIT: %zu bytes of PTX", strlen((const char*)image));
    *module = strdup((const char*)image);
    return 0;
}

// Only a function the module's PTX defines (".entry NAME(") is found, as with the real driver.
CUresult cuModuleGetFunction(void** f, void* module, const char* name) {
    char entry[128];
    snprintf(entry, sizeof entry, ".entry %s(", name);
    if (strstr((const char*)module, entry) == NULL) return 500;
    *f = strdup(name);
    return 0;
}

CUresult cuModuleUnload(void* module) { free(module); return 0; }
CUresult cuFuncSetAttribute(void* f, int attribute, int value) { return attribute == 8 ? 0 : 1; }

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
    NEEDS_CONTEXT;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || extra != NULL) return 1;
    snprintf(last.name, sizeof last.name, "%s", (const char*)f);
    last.grid[0] = gx; last.grid[1] = gy; last.grid[2] = gz;
    last.block[0] = bx; last.block[1] = by; last.block[2] = bz;
    last.shared = shared;
    last.params = params;
    last.count++;
    return 0;
}
