-- wrk script of the noisy-neighbour request flood (bench/neighbours.py): the request comes from
-- post.lua (BENCH_POST_LUA is its path); this adds a count of answers per HTTP status, printed
-- as "Status <code>: <count>" lines at the end, so the harness can tell 429s from other errors.

dofile(os.getenv("BENCH_POST_LUA"))

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("Status %d: %d\n", status, count))
    end
  end
end
