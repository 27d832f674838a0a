/* base_test.c — status carrier, checked arithmetic, clock, file reading. */
#include "base/base.h"
#include "t.h"

int main(void) {
    sw_err e = {0};
    T_EQ_INT(sw_err_set(&e, SW_ERR_ARG, "bad %d", 7), SW_ERR_ARG);
    T_CHECK(strcmp(e.msg, "bad 7") == 0, "msg=%s", e.msg);
    T_EQ_INT(sw_err_set(NULL, SW_ERR_IO, "x"), SW_ERR_IO);
    uint64_t r;
    T_OK(sw_mul_u64(1ull << 31, 1ull << 31, &r) && r == 1ull << 62);
    T_OK(!sw_mul_u64(1ull << 60, 1ull << 10, &r));
    T_OK(!sw_add_u64(UINT64_MAX, 1, &r));
    int64_t a = sw_now_ns(), b = sw_now_ns();
    T_OK(b >= a);
    char *data; size_t len;
    T_EQ_INT(sw_read_file("/nonexistent/x", &data, &len, &e), SW_ERR_IO);
    T_OK(sw_read_file("Makefile", &data, &len, &e) == SW_OK && len > 0 && data[len] == 0);
    free(data);
    return t_done();
}
