#!/bin/sh
# acl-users.sh FLEET [PREFIX] — the Redis ACL SETUSER commands of one
# fleet's four roles, one per line, for redis-cli (each user's password is
# a placeholder: replace >CHANGE-ME before use, or pipe through sed).
#
#   sh scripts/acl-users.sh batch1 | sed "s/>CHANGE-ME/>$(openssl rand -hex 16)/" | redis-cli
#
# Users are named PREFIX-ROLE (PREFIX defaults to llmfleet-FLEET). Every
# role reaches only its fleet's keys (llmfleet:{FLEET}:...), never another
# fleet's:
#   worker    `llmfleet worker`: the scripts (FCALL, EVAL) and the commands they
#             run, on the fleet's keys. Also what `status`, `limits`,
#             `pause`, `resume`, `dead`, `prices` need (they run scripts):
#             give operators this role, under another name.
#   producer  LPUSH onto the fleet's queue; read-only: the done set (what
#             `llmfleet submit` checks) and the results stream (--wait).
#   reader    read-only on the results stream (XREAD, XRANGE).
#   group     a consumer group member: XREADGROUP, XACK, XAUTOCLAIM,
#             XPENDING, XGROUP CREATE on the results stream; no XADD or DEL,
#             so it cannot forge or delete a result.
set -eu
fleet=${1:?usage: acl-users.sh FLEET [USER-PREFIX]}
case $fleet in
*[!A-Za-z0-9_.-]*|'') echo "acl-users.sh: bad fleet name '$fleet'" >&2; exit 2 ;;
esac
prefix=${2:-llmfleet-$fleet}
dir=$(cd "$(dirname "$0")" && pwd)
k="llmfleet:{$fleet}"
base="on >CHANGE-ME resetkeys resetchannels -@all +auth +hello +ping +select"
# Not FUNCTION LOAD: functions are server-wide, and a fleet's worker that
# could replace the library would have its code run by other fleets'
# workers, under their users. An administrator loads it (`llmfleet
# functions load`, once per llmfleet version); the workers FCALL it.
worker_cmds=$(sed -e 's/.*resetchannels -@all //' -e 's/ +function|load//' "$dir/redis-acl.txt")
echo "ACL SETUSER $prefix-worker on >CHANGE-ME resetkeys ~$k:* resetchannels -@all $worker_cmds"
echo "ACL SETUSER $prefix-producer $base ~$k:jobs %R~$k:done %R~$k:results +lpush +llen +smismember +xread +xrevrange"
echo "ACL SETUSER $prefix-reader $base %R~$k:results +xread +xrange +xrevrange +xlen"
echo "ACL SETUSER $prefix-group $base ~$k:results +xreadgroup +xack +xautoclaim +xpending +xgroup|create +xinfo|groups +xlen +xrange"
