-- wrk script: password sign-ins (POST /v2/auth/login) of the seeded bench users in turn,
-- as a user comparing servers with wrk would send them. Counts 200s and everything else
-- across all threads and prints one line at the end:
--   WRK_RESULT ok=<2xx> refused=<non-2xx> seconds=<run time>
-- Settings from the environment: WRK_USERS (200), WRK_TENANT (local), WRK_CLIENT (local-app),
-- WRK_PASSWORD (the bench's default password).
local users = tonumber(os.getenv("WRK_USERS") or "200")
local tenant = os.getenv("WRK_TENANT") or "local"
local client = os.getenv("WRK_CLIENT") or "local-app"
local password = os.getenv("WRK_PASSWORD") or "Bench-Passw0rd!2024"

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    ok = 0
    refused = 0
    sent = 0
end

function request()
    sent = sent + 1
    local user = (id * 7919 + sent) % users
    local body = string.format(
        '{"tenant_id":"%s","client_id":"%s","email":"bench-%d@bench.hellojohn.test","password":"%s"}',
        tenant, client, user, password)
    return wrk.format("POST", "/v2/auth/login", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        ok = ok + 1
    else
        refused = refused + 1
    end
end

function done(summary, latency, requests)
    local o, r = 0, 0
    for _, t in ipairs(threads) do
        o = o + t:get("ok")
        r = r + t:get("refused")
    end
    io.write(string.format("WRK_RESULT ok=%d refused=%d seconds=%.3f p99_ms=%.1f\n",
        o, r, summary.duration / 1e6, latency:percentile(99) / 1e3))
end
