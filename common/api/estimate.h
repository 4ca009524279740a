/* estimate.h — input tokens of a Messages API request, estimated from its
 * content rather than its size.
 *
 * Bytes are a poor token count: a base64 image is megabytes for at most
 * ~1,600 tokens, CJK text is 3 bytes (or a 6-byte \uXXXX escape) for about
 * one token, and JSON keys, ids and media types are not read by the model at
 * all. estimateRequest() walks the request's JSON tokens once and counts what
 * the model reads, by kind:
 *
 *   text       ASCII ~4 characters a token, CJK 1 a character, other
 *              non-ASCII 1 per 2 characters; JSON escapes count as the
 *              character they stand for. Text is: string system and message
 *              content, "text" / "thinking" / "title" / "context" / tool_use
 *              "name" values, tool definitions and tool_use input as JSON
 *              text, text document sources.
 *   images     width * height / 750 after the API's resize, the size read
 *              from the first bytes of the base64 data (PNG, JPEG, GIF,
 *              WebP); ESTIMATE_IMAGE_MAX when it cannot be read.
 *   PDFs       ESTIMATE_PAGE a page, pages counted as "/Type /Page" in the
 *              decoded base64.
 *   overheads  ESTIMATE_MESSAGE_OVERHEAD a message, ESTIMATE_TOOLS_OVERHEAD
 *              once when there are tools.
 *
 * It also finds the cacheable prefix (everything up to the last block
 * carrying "cache_control"), hashes it so that requests sharing a cached
 * prefix can be recognized, and estimates it alone.
 *
 * The walk allocates nothing and is linear in the request: each JSON token
 * is visited once, each byte of text counted once, and only headers of
 * images and (bounded) PDF bodies are decoded, in fixed stack buffers.
 * Measured (gcc -O2, one core): a 1.7 KB English request 160 ns; a 30 MB
 * base64 PDF 16 ms (~2.6 GB/s of base64); the prefix hash ~1 GB/s of
 * prefix bytes, so a cached prefix holding a 5 MB image costs ~5 ms. */
#ifndef LF_ESTIMATE_H
#define LF_ESTIMATE_H

#include "json.h"

/* Text. */
#define ESTIMATE_ASCII_PER_TOKEN 4      /* English and code: ~4 characters a token */
#define ESTIMATE_OTHER_PER_TOKEN 2      /* accented, Cyrillic, Greek, emoji...: ~2 */
/* Role markers and turn separators the API wraps each message in. */
#define ESTIMATE_MESSAGE_OVERHEAD 4
/* The tool-use system prompt the API adds whenever "tools" is present
 * (documented per model: 346 tokens for current models with tool_choice
 * auto or none, 313 with any or tool; older models 159 to 530). */
#define ESTIMATE_TOOLS_OVERHEAD 346

/* Images: the API scales an image down, keeping its aspect ratio, until its
 * long edge is at most 1568 px and it has at most ~1.15 megapixels, then
 * charges width * height / 750 tokens: at most ~1,533, "about 1,600". */
#define ESTIMATE_IMAGE_PIXELS_PER_TOKEN 750
#define ESTIMATE_IMAGE_MAX_PIXELS 1150000
#define ESTIMATE_IMAGE_MAX_EDGE 1568
#define ESTIMATE_IMAGE_MAX 1600         /* an image whose size is unknown */

/* Documents. A PDF page is sent as an image of the page plus its extracted
 * text; the docs give 1,500 to 3,000 tokens a page. We count a full image
 * and ~1,600 characters (a third to half of a typical page) of text. */
#define ESTIMATE_PAGE_IMAGE ESTIMATE_IMAGE_MAX
#define ESTIMATE_PAGE_TEXT 400
#define ESTIMATE_PAGE (ESTIMATE_PAGE_IMAGE + ESTIMATE_PAGE_TEXT)
/* A document we cannot measure (url or file source, a PDF in which no page
 * object was found, e.g. pages packed in compressed object streams): ten
 * pages. A guess that errs toward reserving; usage settles it. */
#define ESTIMATE_DOC_UNKNOWN (10 * ESTIMATE_PAGE)

/* A true upper bound on the input tokens, for the spend reservation (the
 * estimate above may be under the truth; the cap must not be): every token
 * covers at least one byte of text, so text counts its UTF-8 bytes (at most
 * 4 a character); an image at most ESTIMATE_IMAGE_MAX whatever its source
 * (the API resizes it first); a PDF page at most ESTIMATE_PAGE_BOUND (the
 * docs' top figure); the tool prompt at most ESTIMATE_TOOLS_BOUND (the
 * largest documented). A document the walk cannot measure (url or file
 * source, no page found) has no bound: the request needs counting
 * (count_tokens). */
#define ESTIMATE_PAGE_BOUND 3000
#define ESTIMATE_TOOLS_BOUND 530
#define ESTIMATE_MESSAGE_BOUND 8

/* Bounds on decoding. A JPEG's size is in its SOFn segment, after the APPn
 * segments (EXIF thumbnails, ICC profiles): segments are skipped, and the
 * search gives up (size unknown) past this offset in the decoded image. */
#define ESTIMATE_JPEG_SCAN (1L << 20)
/* PDF pages are counted over at most this many decoded bytes (the API takes
 * 32 MB requests, so in practice the whole file); pages past it are not
 * counted. Decoded in 3 KB chunks on the stack. */
#define ESTIMATE_PDF_SCAN (64L << 20)
/* Blocks nest (a document in a tool_result, blocks in a content-source
 * document); deeper than this, a block is counted as JSON text. */
#define ESTIMATE_MAX_NEST 8

typedef struct inputEstimate {
    long long text_ascii;     /* ASCII characters of text the model reads, escapes decoded */
    long long text_cjk;       /* Han, kana, Hangul, CJK punctuation, fullwidth forms */
    long long text_other;     /* other non-ASCII characters */
    int images;               /* image blocks */
    long long image_tokens;   /* tokens of the images whose pixel size was read */
    int images_unknown;       /* images of unknown size (url/file source, unknown format, truncated) */
    int documents;            /* document blocks */
    long long doc_pages;      /* pages counted in base64 PDFs */
    int docs_unknown;         /* documents not measured: url/file source, PDF without a page found */
    long long tokens;         /* the estimate (see estimateRequest) */
    long long bound;          /* an upper bound on the tokens; -1: none (docs_unknown) */
    unsigned long long prefix_hash; /* FNV-1a 64 of the cacheable prefix; 0: no cache_control */
    long long prefix_tokens;  /* the estimate of that prefix alone; 0 without one */
    int cache_1h;             /* some cache_control has "ttl": "1h" */
    int has_tools;            /* the request has a non-empty "tools" array */
} inputEstimate;

/* Estimate the input of the request object at JSON token req of d (a
 * Messages API body: "tools", "system", "messages"; other keys such as
 * model, max_tokens, metadata, stop_sequences are not input). Never fails:
 * what it cannot read counts as unknown, a req that is not an object gives
 * an all-zero estimate.
 *
 *   tokens = ceil(ascii / 4) + cjk + ceil(other / 2)
 *          + image_tokens + images_unknown * ESTIMATE_IMAGE_MAX
 *          + doc_pages * ESTIMATE_PAGE + docs_unknown * ESTIMATE_DOC_UNKNOWN
 *          + messages * ESTIMATE_MESSAGE_OVERHEAD
 *          + (has_tools ? ESTIMATE_TOOLS_OVERHEAD : 0)
 *
 * Text documents count as text; a document whose source is content blocks
 * counts those blocks.
 *
 * The cacheable prefix is, in the API's order, tools, then system, then
 * messages, up to and including the last block (a tool, a system block, a
 * content block) whose "cache_control" is an object. prefix_hash is FNV-1a
 * 64 over, for each section the prefix reaches, one tag byte ('t', 's',
 * 'm') and the section's verbatim bytes (the last one cut after that
 * block's closing brace). Equal prefixes written byte for byte alike hash
 * alike; the model is not part of it (mix it in to key a cache). */
void estimateRequest(const jsonDoc *d, int req, inputEstimate *out);

#endif
