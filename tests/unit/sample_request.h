/* sample_request.h — the 1.6 KB English request of the estimator's unit test
 * and of its benchmark (tests/bench/estspeed.c): system, three messages,
 * metadata; 1,500 ASCII characters of text. Writes it into js (at least
 * 2,048 bytes) and returns its length. */
#ifndef SAMPLE_REQUEST_H
#define SAMPLE_REQUEST_H
#include <stdio.h>

static int sampleRequest(char *js, size_t cap) {
    char text[401];
    for (int i = 0; i < 400; i++) text[i] = "Lorem ipsum dolor sit amet, consectetur. "[i % 41];
    text[400] = '\0';
    return snprintf(js, cap,
                    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,"
                    "\"metadata\":{\"user_id\":\"u-17\"},\"system\":\"%s\","
                    "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},"
                    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]},"
                    "{\"role\":\"user\",\"content\":\"%.300s\"}]}",
                    text, text, text, text);
}
#endif
