/* classes.c — model classes: the pools the real API keeps rate limits in.
 *
 * A model's class is "opus" for claude-opus-*, "sonnet" for
 * claude-sonnet-*, "haiku" for claude-haiku-* and claude-3-5-haiku-*, and
 * the model id itself for anything else. --class-limits CLASS=RPM,ITPM,OTPM
 * gives a class token buckets of its own; a class without it shares the
 * global --rpm/--itpm/--otpm buckets. Every class seen gets counters
 * (requests, 200s, 429s, tokens served by kind), reported under "classes"
 * in /_stats. Admission itself is decided in messages.c; this file only
 * names classes, holds their buckets and formats their counters.
 *
 * Classes live in a fixed array in `fake`; past FAKE_CLASSES_MAX, new
 * classes share one last slot named "_other", so a client sending endless
 * model ids cannot grow memory. */
#include "fakeapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLASS_OTHER "_other"

/* ---- Names --------------------------------------------------------------- */

/* Write model's class name into out (outlen >= FAKE_MODEL_MAX). */
static void classNameOf(const char *model, char *out, size_t outlen) {
    static const char *const families[][2] = {
        {"claude-opus-", "opus"},
        {"claude-sonnet-", "sonnet"},
        {"claude-haiku-", "haiku"},
        {"claude-3-5-haiku-", "haiku"},
    };
    const char *name = model;

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (strncmp(model, families[i][0], strlen(families[i][0])) == 0) {
            name = families[i][1];
            break;
        }
    snprintf(out, outlen, "%s", name);
}

/* Index of the class called name, or -1. */
static int classFind(const char *name) {
    for (int i = 0; i < fake.nclasses; i++)
        if (strcmp(fake.classes[i].name, name) == 0) return i;
    return -1;
}

/* Index of a new class called name; the "_other" slot when full. */
static int classAdd(const char *name) {
    int i;

    if (fake.nclasses >= FAKE_CLASSES_MAX - 1) {
        if ((i = classFind(CLASS_OTHER)) >= 0) return i;
        name = CLASS_OTHER;
    }
    i = fake.nclasses++;
    memset(&fake.classes[i], 0, sizeof(fake.classes[i]));
    snprintf(fake.classes[i].name, sizeof(fake.classes[i].name), "%s", name);
    return i;
}

int fakeClassOf(const char *model) {
    char name[FAKE_MODEL_MAX];
    int i;

    classNameOf(model, name, sizeof(name));
    if ((i = classFind(name)) >= 0) return i;
    return classAdd(name);
}

/* ---- Limits -------------------------------------------------------------- */

/* Parse a non-negative decimal count at *p, up to stop (',' or NUL).
 * Advances *p past it. Returns 0 or -1. */
static int classCount(const char **p, char stop, long long *out) {
    char *end;

    errno = 0;
    if (**p < '0' || **p > '9') return -1;
    *out = strtoll(*p, &end, 10);
    if (errno || *end != stop) return -1;
    *p = end + (stop != '\0');
    return 0;
}

int fakeClassParse(const char *spec) {
    const char *eq = strchr(spec, '='), *p;
    char name[FAKE_MODEL_MAX];
    long long rpm, itpm, otpm;
    fakeClass *c;
    int i;

    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof(name)) return -1;
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = '\0';
    if (strcmp(name, CLASS_OTHER) == 0) return -1;
    p = eq + 1;
    if (classCount(&p, ',', &rpm) != 0 || classCount(&p, ',', &itpm) != 0 ||
        classCount(&p, '\0', &otpm) != 0)
        return -1;
    if ((i = classFind(name)) < 0) {
        if (fake.nclasses >= FAKE_CLASSES_MAX - 1) return -1;
        i = classAdd(name);
    }
    c = &fake.classes[i];
    c->own = 1;
    c->rpm = rpm;
    c->itpm = itpm;
    c->otpm = otpm;
    return 0;
}

void fakeClassFill(double now) {
    for (int i = 0; i < fake.nclasses; i++) {
        fakeClass *c = &fake.classes[i];
        if (!c->own) continue;
        fakeBucketSetLimit(&c->requests, c->rpm, now);
        fakeBucketSetLimit(&c->input, c->itpm, now);
        fakeBucketSetLimit(&c->output, c->otpm, now);
        fakeBucketFill(&c->requests);
        fakeBucketFill(&c->input);
        fakeBucketFill(&c->output);
    }
}

void fakeClassBuckets(int cls, fakeBucketSet *bs) {
    fakeClass *c = cls >= 0 && cls < fake.nclasses ? &fake.classes[cls] : NULL;

    if (c && c->own) {
        bs->requests = &c->requests;
        bs->input = &c->input;
        bs->output = &c->output;
    } else {
        bs->requests = &fake.requests;
        bs->input = &fake.input;
        bs->output = &fake.output;
    }
}

void fakeClassRefill(int cls, double now) {
    fakeBucketSet bs;

    fakeClassBuckets(cls, &bs);
    fakeBucketRefill(bs.requests, now);
    fakeBucketRefill(bs.input, now);
    fakeBucketRefill(bs.output, now);
}

/* ---- Counters ------------------------------------------------------------ */

void fakeClassStatsReset(void) {
    for (int i = 0; i < fake.nclasses; i++)
        memset(&fake.classes[i].stats, 0, sizeof(fake.classes[i].stats));
}

void fakeClassJson(buf *o) {
    double now = fakeNow();

    bufAppendStr(o, "\"classes\":{");
    for (int i = 0; i < fake.nclasses; i++) {
        const fakeClass *c = &fake.classes[i];
        const fakeClassStats *s = &c->stats;
        fakeBucketSet bs;
        long long rpm = c->own ? c->rpm : fake.cfg.rpm;
        long long itpm = c->own ? c->itpm : fake.cfg.itpm;
        long long otpm = c->own ? c->otpm : fake.cfg.otpm;

        if (i > 0) bufAppendStr(o, ",");
        bufAppendJsonString(o, c->name, strlen(c->name));
        bufPrintf(o, ":{\"own_buckets\":%s,\"rpm\":%lld,\"itpm\":%lld,\"otpm\":%lld,"
                  "\"requests\":%lld,\"ok\":%lld,\"r429\":%lld,"
                  "\"input_tokens\":%lld,\"itpm_input_tokens\":%lld,"
                  "\"cache_creation_input_tokens\":%lld,"
                  "\"cache_read_input_tokens\":%lld,\"output_tokens\":%lld,",
                  c->own ? "true" : "false", rpm, itpm, otpm,
                  s->requests, s->ok, s->r429, s->inputTokens,
                  s->inputTokens + s->cacheWrite, s->cacheWrite, s->cacheRead,
                  s->outputTokens);
        /* The buckets' exact levels now (refilled): what the headers round. */
        fakeClassRefill(i, now);
        fakeClassBuckets(i, &bs);
        bufPrintf(o, "\"level\":{\"requests\":%.1f,\"input\":%.1f,\"output\":%.1f}}",
                  bs.requests->level, bs.input->level, bs.output->level);
    }
    bufAppendStr(o, "}");
}
