#!/bin/sh
# Regenerate scripts/demo/prompts.jsonl: 1,200 grading-style jobs over a mix
# of models, deterministic (no randomness), so the demo is reproducible.
#   sh scripts/demo/make-prompts.sh > scripts/demo/prompts.jsonl
awk 'BEGIN {
    split("photosynthesis|the French Revolution|binary search|plate tectonics|supply and demand|the water cycle|recursion|the Doppler effect|natural selection|compound interest|the printing press|TCP handshakes|vaccines|black holes|the Silk Road", topic, "|")
    split("Grade this student answer about %s on a 1-5 scale and justify briefly.|Write a two-sentence summary of %s for a 12-year-old.|List three common misconceptions about %s.|Label the difficulty (easy, medium, hard) of this exam question on %s.|Give one exam question about %s with its answer.", task, "|")
    split("claude-sonnet-4-5|claude-haiku-4-5|claude-sonnet-4-5|claude-opus-4-7", model, "|")
    for (i = 1; i <= 1200; i++) {
        t = topic[(i * 7) % 15 + 1]; k = task[(i * 3) % 5 + 1]; m = model[i % 4 + 1]
        prompt = sprintf(k, t)
        printf "{\"id\":\"demo-%04d\",\"request\":{\"model\":\"%s\",\"max_tokens\":%d,\"system\":\"You are a careful teaching assistant.\",\"messages\":[{\"role\":\"user\",\"content\":\"%s (item %d)\"}]},\"meta\":{\"topic\":\"%s\",\"batch\":\"demo\"}}\n", i, m, 64 + (i * 37) % 192, prompt, i, t
    }
}'
