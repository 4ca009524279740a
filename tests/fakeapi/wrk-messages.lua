-- wrk-messages.lua — POST /v1/messages with a ~1.6 KB JSON body, for
-- measuring bin/llmfleet-fakeapi:
--   wrk -t1 -c64 -d10s -s tests/fakeapi/wrk-messages.lua http://127.0.0.1:PORT
local words = {}
for i = 1, 230 do words[#words + 1] = "lorem" .. (i % 10) end
local text = table.concat(words, " ")

wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = "bench-key"
wrk.body = '{"model":"claude-sonnet-4-6","max_tokens":256,"messages":' ..
    '[{"role":"user","content":"' .. text .. '"}]}'
