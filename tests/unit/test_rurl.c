/* test_rurl.c — unit tests for common/shelf/rurl.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rurl.h"

static char err[256];

static rurl parseOk(const char *url) {
    rurl u;
    err[0] = '\0';
    if (rurlParse(url, &u, err, sizeof(err)) != 0)
        fail_msg("refused \"%s\": %s", url, err);
    return u;
}

/* Expect url to be refused with a message containing needle, and never
 * containing the word "secret" (the password used in these URLs). */
static void parseBad(const char *url, const char *needle) {
    rurl u;
    err[0] = '\0';
    if (rurlParse(url, &u, err, sizeof(err)) != -1)
        fail_msg("accepted \"%s\"", url ? url : "(null)");
    if (err[0] == '\0') fail_msg("no message for \"%s\"", url ? url : "(null)");
    if (needle && strstr(err, needle) == NULL)
        fail_msg("message for \"%s\" lacks \"%s\": %s", url, needle, err);
    if (strstr(err, "secret")) fail_msg("message leaks the password: %s", err);
}

static void test_defaults(void **state) {
    (void)state;
    rurl u = parseOk("redis://localhost");
    assert_int_equal(u.is_unix, 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.pass, "");
    assert_string_equal(u.path, "");
    u = parseOk("redis://127.0.0.1/");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    u = parseOk("REDIS://Cache-1.example.com");
    assert_string_equal(u.host, "Cache-1.example.com");
}

static void test_sentinel(void **state) {
    (void)state;
    rurl u = parseOk("redis+sentinel://:secret@s1,s2:26380,[::1]:26381/mymaster/2");
    assert_int_equal(u.sentinels, 3);
    assert_string_equal(u.sentinel[0].host, "s1");
    assert_int_equal(u.sentinel[0].port, 26379);
    assert_string_equal(u.sentinel[1].host, "s2");
    assert_int_equal(u.sentinel[1].port, 26380);
    assert_string_equal(u.sentinel[2].host, "::1");
    assert_int_equal(u.sentinel[2].port, 26381);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 2);
    assert_string_equal(u.pass, "secret");
    u = parseOk("redis+sentinel://10.0.0.1/m");
    assert_int_equal(u.sentinels, 1);
    assert_int_equal(u.db, 0);
    char d[300];
    rurlDescribe(&u, d, sizeof(d));
    assert_string_equal(d, "redis+sentinel://10.0.0.1:26379/m/0");
    parseBad("redis+sentinel://:secret@s1", "/MASTER");
    parseBad("redis+sentinel://:secret@s1/", "master name");
    parseBad("redis+sentinel://s1/m/x", "not a number");
    parseBad("redis+sentinel://s1,,s2/m", "missing host");
    parseBad("redis+sentinel://a,b,c,d,e,f,g,h,i/m", "more than 8");
    parseBad("redis+sentinel://s1/m!x", "bad character");
}

static void test_port_and_db(void **state) {
    (void)state;
    rurl u = parseOk("redis://10.0.0.5:6380/3");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    u = parseOk("redis://h:1/15");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 15);
    u = parseOk("redis://h:65535");
    assert_int_equal(u.port, 65535);
    u = parseOk("redis://h?db=7");
    assert_int_equal(u.db, 7);
    u = parseOk("redis://h:7000/?db=2");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
    u = parseOk("redis://h/2147483647");
    assert_int_equal(u.db, 2147483647);
}

static void test_user_and_password(void **state) {
    (void)state;
    rurl u = parseOk("redis://alice:secret@h:6390/1");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.pass, "secret");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 1);
    /* Password only. */
    u = parseOk("redis://:secret@h");
    assert_string_equal(u.user, "");
    assert_string_equal(u.pass, "secret");
    assert_string_equal(u.host, "h");
    /* A password with ':' in it: only the first ':' splits. */
    u = parseOk("redis://bob:a:b@h");
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.pass, "a:b");
    /* An unencoded '@' or '/' in the password: the last '@' ends it. */
    u = parseOk("redis://:p@ss/w@h/4");
    assert_string_equal(u.pass, "p@ss/w");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 4);
    /* An empty password is allowed (and means none). */
    u = parseOk("redis://:@h");
    assert_string_equal(u.pass, "");
}

static void test_percent_decoding(void **state) {
    (void)state;
    rurl u = parseOk("redis://us%65r:p%40ss%3Aw%2Fo%25rd%20x@h");
    assert_string_equal(u.user, "user");
    assert_string_equal(u.pass, "p@ss:w/o%rd x");
    u = parseOk("redis://:%c3%a9t%C3%A9@h");                 /* UTF-8 bytes */
    assert_string_equal(u.pass, "\xc3\xa9t\xc3\xa9");
    parseBad("redis://:secret%@h", "percent");
    parseBad("redis://:secret%4@h", "percent");
    parseBad("redis://:secret%zz@h", "percent");
    parseBad("redis://:secret%00@h", "percent");
    parseBad("redis://us%g0er:secret@h", "percent");
    u = parseOk("unix:///run/redis%20x%2Esock");
    assert_string_equal(u.path, "/run/redis x.sock");
    parseBad("unix:///run/%zz", "percent");
}

static void test_ipv6(void **state) {
    (void)state;
    rurl u = parseOk("redis://[::1]");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    u = parseOk("redis://:secret@[::1]:6380/2");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    u = parseOk("redis://[2001:db8::7]:7000");
    assert_string_equal(u.host, "2001:db8::7");
    u = parseOk("redis://[fe80::1%25eth0]");
    assert_string_equal(u.host, "fe80::1%25eth0");
    parseBad("redis://[::1", "'['");
    parseBad("redis://[]:6379", "host");
    parseBad("redis://[::1]x", "']'");
    parseBad("redis://[::1]:0", "port");
    parseBad("redis://[::1/x]", NULL);
    parseBad("redis://::1", "host");                    /* unbracketed */
}

static void test_unix(void **state) {
    (void)state;
    rurl u = parseOk("unix:///run/redis/redis.sock");
    assert_int_equal(u.is_unix, 1);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);
    assert_string_equal(u.host, "");
    u = parseOk("unix:///run/redis.sock?db=5");
    assert_string_equal(u.path, "/run/redis.sock");
    assert_int_equal(u.db, 5);
    u = parseOk("unix://:secret@/run/redis.sock?db=1");
    assert_string_equal(u.pass, "secret");
    assert_string_equal(u.user, "");
    assert_string_equal(u.path, "/run/redis.sock");
    assert_int_equal(u.db, 1);
    u = parseOk("unix://bob:secret@/tmp/r.sock");
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.path, "/tmp/r.sock");
    u = parseOk("UNIX:///x");
    assert_string_equal(u.path, "/x");
    parseBad("unix://", "path");
    parseBad("unix:///", "path");
    parseBad("unix://run/redis.sock", "absolute");
    parseBad("unix:///run/redis.sock?db=x", "db");
    parseBad("unix:///run/redis.sock?db=", "db");
    parseBad("unix:///run/redis.sock?timeout=5", "timeout");
    parseBad("unix:///run/redis.sock?password=secret", "password");
    parseBad("unix://secret@/run/redis.sock", "password");
}

static void test_garbage(void **state) {
    (void)state;
    parseBad(NULL, "empty");
    parseBad("", "empty");
    parseBad("localhost:6379", "scheme");
    parseBad("http://h", "scheme");
    parseBad("redis:/h", "scheme");
    parseBad("redis:", "scheme");
    parseBad("rediss://h", "TLS");
    parseBad("redis://", "host");
    parseBad("redis://:6379", "host");
    parseBad("redis:///0", "host");
    parseBad("redis://:secret@", "host");
    parseBad("redis://h:0", "port");
    parseBad("redis://h:70000", "port");
    parseBad("redis://h:65536", "port");
    parseBad("redis://h:abc", "port");
    parseBad("redis://h:", "port");
    parseBad("redis://h:-1", "port");
    parseBad("redis://h:99999999999999999999999", "port");
    parseBad("redis://h:6379x", "port");
    parseBad("redis://h/x", "db");
    parseBad("redis://h/1x", "db");
    parseBad("redis://h/-1", "db");
    parseBad("redis://h/2147483648", "db");
    parseBad("redis://h/99999999999999999999", "db");
    parseBad("redis://h/1/2", "db");
    parseBad("redis://h/1?db=2", "db");
    parseBad("redis://h?db=abc", "db");
    parseBad("redis://h h", "character");
    parseBad("redis://h\t", "character");
    parseBad("redis://h\x7f", "character");
    parseBad("redis://h\xc3\xa9", "character");
    parseBad("redis://ho$t", "host");
    parseBad("redis://alice@h", "password");            /* user without ':' */
    /* A forgotten '@': the password lands where the port goes; the
     * message must not echo it. */
    parseBad("redis://alice:secret", "port");
}

static void test_too_long(void **state) {
    (void)state;
    char url[2048];
    char filler[600];
    memset(filler, 'a', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';

    /* Host: 255 fits, 256 does not. */
    snprintf(url, sizeof(url), "redis://%.255s:1", filler);
    rurl u = parseOk(url);
    assert_int_equal(strlen(u.host), 255);
    snprintf(url, sizeof(url), "redis://%.256s:1", filler);
    parseBad(url, "host");
    /* User: 127 fits, 128 does not. */
    snprintf(url, sizeof(url), "redis://%.127s:pw@h", filler);
    u = parseOk(url);
    assert_int_equal(strlen(u.user), 127);
    snprintf(url, sizeof(url), "redis://%.128s:pw@h", filler);
    parseBad(url, "user");
    /* Password: 255 fits, 256 does not, counted after decoding. */
    snprintf(url, sizeof(url), "redis://:%.255s@h", filler);
    u = parseOk(url);
    assert_int_equal(strlen(u.pass), 255);
    snprintf(url, sizeof(url), "redis://:%.256s@h", filler);
    parseBad(url, "password");
    snprintf(url, sizeof(url), "redis://:%.254s%%41@h", filler);
    u = parseOk(url);
    assert_int_equal(strlen(u.pass), 255);
    /* Socket path: 255 fits, 256 does not. */
    snprintf(url, sizeof(url), "unix:///%.254s", filler);
    u = parseOk(url);
    assert_int_equal(strlen(u.path), 255);
    snprintf(url, sizeof(url), "unix:///%.255s", filler);
    parseBad(url, "path");
    /* A very long URL of junk. */
    memset(url, ':', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "redis://", 8);
    parseBad(url, NULL);
}

static void test_describe(void **state) {
    (void)state;
    char out[300];
    rurl u = parseOk("redis://alice:secret@h:6390/1");
    rurlDescribe(&u, out, sizeof(out));
    assert_string_equal(out, "redis://h:6390/1");
    u = parseOk("redis://:secret@[::1]");
    rurlDescribe(&u, out, sizeof(out));
    assert_string_equal(out, "redis://[::1]:6379/0");
    u = parseOk("unix://:secret@/run/r.sock?db=2");
    rurlDescribe(&u, out, sizeof(out));
    assert_string_equal(out, "unix:///run/r.sock?db=2");
    char small[8];
    rurlDescribe(&u, small, sizeof(small));
    assert_string_equal(small, "unix://");
    rurlDescribe(&u, small, 0);
}

/* Random printable junk after a scheme never crashes; a parse either
 * succeeds with sane fields or fails with a message. */
static void test_random_junk(void **state) {
    (void)state;
    static const char alphabet[] = "ab:@/[]?=%&.09db";
    static const char *schemes[] = {"redis://", "unix://"};
    unsigned seed = 777;
    for (int iter = 0; iter < 20000; iter++) {
        char url[64];
        size_t n = strlen(schemes[iter & 1]);
        memcpy(url, schemes[iter & 1], n);
        seed = seed * 1103515245u + 12345u;
        size_t len = n + (seed >> 16) % 40;
        for (size_t k = n; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            url[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        url[len] = '\0';
        rurl u;
        err[0] = '\0';
        if (rurlParse(url, &u, err, sizeof(err)) == 0) {
            assert_true(u.port >= 0 && u.port <= 65535);
            assert_true(u.db >= 0);
            assert_true(u.is_unix ? u.path[0] == '/' : u.host[0] != '\0');
        } else {
            assert_true(err[0] != '\0');
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_port_and_db),
        cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_user_and_password),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_random_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
