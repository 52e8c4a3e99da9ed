#!lua name=sserelay_control
-- sserelay's control functions, a Redis Function library (Redis 7).
--
-- Loaded by every sserelay instance at start (FUNCTION LOAD REPLACE, on
-- every primary of a cluster), whatever its options.  Apps call:
--
--   FCALL sserelay_revoke 1 <channel> <seconds>
--     Every instance ends each open stream that includes <channel> with a
--     last "event: revoked" (data: the channel), and refuses new streams
--     asking for it (403 "revoked") for <seconds> (1 to 31536000).  With
--     --auth jwt only tokens issued (iat) before the revocation's second
--     are refused.  Returns how many instances got the announcement at
--     once (PUBLISH's count; in a cluster, those subscribed on the node
--     that ran it, which is every instance).  The others (started later,
--     or cut from Redis) read the revocation's key when they (re)connect.
--
--   FCALL sserelay_unrevoke 1 <channel>
--     Ends a revocation early.  Returns 1 if there was one, else 0.
--
--   FCALL_RO sserelay_revocation 1 <channel>
--     The revocation in force: {since_ms, until_ms} (Redis's clock), or
--     nil.  The instances read it this way.
--
--
-- Presence (--presence yes on the instances):
--
--   FCALL sserelay_presence 1 <channel>
--     Who has streams open on <channel>, on every instance: a flat array
--     who, streams, who, streams, ... sorted by who; the anonymous
--     streams (no ?user=) under "".
--
--   FCALL sserelay_presence_count 1 <channel>
--     {people, streams}: people named (the anonymous are not people, but
--     their streams count).
--
--   The instances keep them with (internal):
--   FCALL sserelay_presence_set 1 <channel> <instance> <ttl_ms> <pub>
--       [<who> <streams>]...
--     This instance's counts (0: gone), and its entry refreshed for
--     <ttl_ms>.  With <pub> (PUBLISH or SPUBLISH; "" for none), a person
--     whose first stream opened anywhere is announced: "join".  Returns
--     the people whose last stream anywhere just closed (for a leave
--     after the grace).  <pub> RETURN (--history redis): nothing is
--     published; it returns {those people, the announcements}, which the
--     instance sends with FCALL sserelay_publish so that they get their
--     position in the channel's history like any message.
--   FCALL sserelay_presence_leave 1 <channel> <pub> <who>...
--     After the grace: those still gone are announced, "leave" (the
--     number of them; with RETURN the announcements).
--
-- Keys, in the channel's slot: sserelay:<c>:p, a hash "<instance>\n<who>"
-- -> streams; sserelay:<c>:i, a sorted set of instances scored by when
-- their entries expire (ms); sserelay:<c>:a, the people announced present
-- (join sent, leave not yet).  An instance that dies stops refreshing its
-- score, and its entries drop out of every answer within its ttl (and
-- out of the hash at the next answer).  Announcements are published on
-- the channel itself as "\0sre:join:{\"user\":\"alice\",\"channel\":...}" (or leave),
-- which the instances send to the channel's streams as "event: join".
--
-- Keys: sserelay:<c>:r, a string "<since_ms>:<until_ms>:<channel>" expiring with
-- the revocation, where <c> is the channel with its hash tag kept, or
-- wrapped in {} when it has none, so that the key shares the channel's
-- cluster slot.  Announcements: PUBLISH sserelay:control "r <since_ms>
-- <until_ms> <channel>" (or "u 0 0 <channel>" for an unrevoke).

local CONTROL = 'sserelay:control'
local MAX_SECONDS = 31536000

local function key_of(ch, suffix)
	local open = string.find(ch, '{', 1, true)
	if open then
		local close = string.find(ch, '}', open + 1, true)
		if close and close > open + 1 then
			return 'sserelay:' .. ch .. suffix
		end
	end
	if string.find(ch, '}', 1, true) then
		return nil
	end
	return 'sserelay:{' .. ch .. '}' .. suffix
end

local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function revoke(keys, args)
	local ch = keys[1]
	local secs = tonumber(args[1])
	if ch == nil or #keys ~= 1 or #args ~= 1 or secs == nil or
	    secs ~= math.floor(secs) or secs < 1 or secs > MAX_SECONDS then
		return redis.error_reply('ERR usage: FCALL sserelay_revoke 1 ' ..
		    '<channel> <seconds> (seconds: 1 to ' .. MAX_SECONDS .. ')')
	end
	local k = key_of(ch, ':r')
	if k == nil then
		return redis.error_reply('ERR sserelay: a channel with } but ' ..
		    'no {tag} has no slot of its own')
	end
	local since = now_ms()
	local untl = since + secs * 1000
	redis.call('SET', k, string.format('%d:%d:', since, untl) .. ch, 'PX',
	    secs * 1000)
	return redis.call('PUBLISH', CONTROL,
	    string.format('r %d %d ', since, untl) .. ch)
end

local function unrevoke(keys, args)
	local ch = keys[1]
	if ch == nil or #keys ~= 1 or #args ~= 0 then
		return redis.error_reply('ERR usage: FCALL sserelay_unrevoke 1 ' ..
		    '<channel>')
	end
	local k = key_of(ch, ':r')
	if k == nil then
		return 0
	end
	local n = redis.call('DEL', k)
	redis.call('PUBLISH', CONTROL, 'u 0 0 ' .. ch)
	return n
end

local function revocation(keys, args)
	local k = key_of(keys[1], ':r')
	if k == nil then
		return nil
	end
	local v = redis.call('GET', k)
	if not v then
		return nil
	end
	local a, b = string.match(v, '^(%d+):(%d+):')
	return { tonumber(a), tonumber(b) }
end

-- presence ------------------------------------------------------------------

local function live_instances(ikey, now)
	redis.call('ZREMRANGEBYSCORE', ikey, '-inf', now)
	local live = {}
	for _, i in ipairs(redis.call('ZRANGE', ikey, 0, -1)) do
		live[i] = true
	end
	return live
end

-- who -> streams, over the live instances; the dead ones' fields dropped
local function totals(pkey, live, clean)
	local t = {}
	local all = redis.call('HGETALL', pkey)
	for k = 1, #all, 2 do
		local f, n = all[k], tonumber(all[k + 1])
		local nl = string.find(f, '\n', 1, true)
		local inst, who = string.sub(f, 1, nl - 1), string.sub(f, nl + 1)
		if live[inst] then
			t[who] = (t[who] or 0) + n
		elseif clean then
			redis.call('HDEL', pkey, f)
		end
	end
	return t
end

local function total_of(pkey, live, who)
	local n = 0
	for inst, _ in pairs(live) do
		n = n + tonumber(redis.call('HGET', pkey, inst .. '\n' .. who) or 0)
	end
	return n
end

-- pub RETURN (--history redis): the announcement is returned, for the
-- instance to send with FCALL sserelay_publish (a function cannot call
-- another library's), so that it gets a position like any message
local function announce(pub, ch, what, who, said)
	-- "user" first, always: {"user":"alice","channel":"upload:u7"}
	local msg = '\0sre:' .. what .. ':{"user":' .. cjson.encode(who) ..
	    ',"channel":' .. cjson.encode(ch) .. '}'
	if pub == 'PUBLISH' or pub == 'SPUBLISH' then
		redis.call(pub, ch, msg)
	elseif pub == 'RETURN' then
		said[#said + 1] = msg
	end
end

local function presence_keys(ch)
	return key_of(ch, ':p'), key_of(ch, ':i'), key_of(ch, ':a')
end

local function presence_set(keys, args)
	local ch, inst, ttl, pub = keys[1], args[1], tonumber(args[2]), args[3]
	if ch == nil or inst == nil or ttl == nil or pub == nil or
	    #args % 2 ~= 1 then
		return redis.error_reply('ERR usage: FCALL sserelay_presence_set ' ..
		    '1 <channel> <instance> <ttl_ms> <pub> [<who> <streams>]...')
	end
	local pkey, ikey, akey = presence_keys(ch)
	if pkey == nil then
		return {}
	end
	local now = now_ms()
	redis.call('ZADD', ikey, now + ttl, inst)
	local live = live_instances(ikey, now)
	local gone, said = {}, {}
	for k = 4, #args, 2 do
		local who, n = args[k], tonumber(args[k + 1])
		local f = inst .. '\n' .. who
		if n > 0 then
			redis.call('HSET', pkey, f, n)
		else
			redis.call('HDEL', pkey, f)
		end
		if pub ~= '' and who ~= '' then
			local t = total_of(pkey, live, who)
			if t > 0 and redis.call('HSETNX', akey, who, 1) == 1 then
				announce(pub, ch, 'join', who, said)
			elseif t == 0 and redis.call('HEXISTS', akey, who) == 1 then
				gone[#gone + 1] = who
			end
		end
	end
	-- the keys outlive every entry in them by a ttl
	for _, k in ipairs({ pkey, ikey, akey }) do
		redis.call('PEXPIRE', k, 2 * ttl + 1000)
	end
	if pub == 'RETURN' then
		return { gone, said }
	end
	return gone
end

local function presence_leave(keys, args)
	local ch, pub = keys[1], args[1]
	if ch == nil or pub == nil then
		return redis.error_reply('ERR usage: FCALL sserelay_presence_leave ' ..
		    '1 <channel> <pub> <who>...')
	end
	local pkey, ikey, akey = presence_keys(ch)
	if pkey == nil then
		return 0
	end
	local live = live_instances(ikey, now_ms())
	local n, said = 0, {}
	for k = 2, #args do
		local who = args[k]
		if total_of(pkey, live, who) == 0 and
		    redis.call('HDEL', akey, who) == 1 then
			announce(pub, ch, 'leave', who, said)
			n = n + 1
		end
	end
	if pub == 'RETURN' then
		return said
	end
	return n
end

local function presence(keys, args)
	if keys[1] == nil or #keys ~= 1 or #args ~= 0 then
		return redis.error_reply('ERR usage: FCALL sserelay_presence 1 ' ..
		    '<channel>')
	end
	local pkey, ikey = presence_keys(keys[1])
	if pkey == nil then
		return {}
	end
	local t = totals(pkey, live_instances(ikey, now_ms()), true)
	local whos = {}
	for who, n in pairs(t) do
		if n > 0 then
			whos[#whos + 1] = who
		end
	end
	table.sort(whos)
	local out = {}
	for _, who in ipairs(whos) do
		out[#out + 1] = who
		out[#out + 1] = t[who]
	end
	return out
end

local function presence_count(keys, args)
	if keys[1] == nil or #keys ~= 1 or #args ~= 0 then
		return redis.error_reply('ERR usage: FCALL ' ..
		    'sserelay_presence_count 1 <channel>')
	end
	local pkey, ikey = presence_keys(keys[1])
	if pkey == nil then
		return { 0, 0 }
	end
	local t = totals(pkey, live_instances(ikey, now_ms()), true)
	local people, streams = 0, 0
	for who, n in pairs(t) do
		if n > 0 then
			streams = streams + n
			if who ~= '' then
				people = people + 1
			end
		end
	end
	return { people, streams }
end

redis.register_function('sserelay_revoke', revoke)
redis.register_function('sserelay_unrevoke', unrevoke)
redis.register_function{function_name = 'sserelay_revocation',
    callback = revocation, flags = { 'no-writes' }}
redis.register_function('sserelay_presence', presence)
redis.register_function('sserelay_presence_count', presence_count)
redis.register_function('sserelay_presence_set', presence_set)
redis.register_function('sserelay_presence_leave', presence_leave)
