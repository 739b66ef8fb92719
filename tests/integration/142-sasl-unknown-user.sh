#!/usr/bin/env bash
# SASL does not tell who has an account (RFC 5802 5.1). On the wire (SaslHandshake v1,
# SaslAuthenticate v1, tests/progs/sasl_probe.py): a SCRAM client-first message naming an unknown
# user, or a user without a credential for that mechanism, is answered with a
# server-first message like a real user's (a 32-byte salt, the same on a second try,
# 4096 iterations) and the login fails only at the proof, with the same error code and
# message as a known user's wrong password; PLAIN answers an unknown user and a wrong
# password alike (and runs the same PBKDF2 for both, which is not timed here). The
# broker's own log still names the reason; a restart keeps the made-up salts. Before:
# the first message failed at once for an unknown user, and PLAIN refused one without
# any work; then the salts changed with each broker process.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3

tl_start_broker --override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT \
	--override sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
	--add-scram "SCRAM-SHA-512=[name=alice,password=alice-pw]" \
	--add-scram "SCRAM-SHA-256=[name=bob,password=bob-pw]"

python3 "$TL_ROOT/tests/progs/sasl_probe.py" check "${TL_BROKER##*:}" >"$TL_TMP/out" 2>&1 ||
	{ cat "$TL_TMP/out" >&2; tl_fail "the SASL exchanges differ"; }
cat "$TL_TMP/out" >&2
tl_grep_log 'SASL.*(User:)?mallory.*unknown user|unknown user.*mallory' ||
	tl_fail "the broker's log does not name the reason for mallory"
tl_grep_log 'no credential for this mechanism' ||
	tl_fail "the broker's log does not say bob has no SCRAM-SHA-512 credential"
tl_log "ok: unknown users are refused as wrong passwords are"

# A restart keeps every made-up salt, as it keeps a real user's: the secret they derive
# from is in .tally-meta (mode 0600); per process, a second login after a restart told
# an unknown name from a real one.
[ "$(stat -c %a "$TL_DATA/.tally-meta/sasl-mock-secret")" = 600 ] ||
	tl_fail "the unknown-user secret is not a 0600 file in .tally-meta"
tl_stop_broker
tl_start_broker --override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT \
	--override sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
python3 "$TL_ROOT/tests/progs/sasl_probe.py" check "${TL_BROKER##*:}" >"$TL_TMP/out2" 2>&1 ||
	{ cat "$TL_TMP/out2" >&2; tl_fail "the SASL exchanges differ after a restart"; }
diff <(grep '^salt ' "$TL_TMP/out") <(grep '^salt ' "$TL_TMP/out2") >&2 ||
	tl_fail "an unknown user's salt changed across a restart"
tl_log "ok: the made-up salts survive a restart"
