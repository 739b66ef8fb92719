/* replication.pml - a Promela model of Tally's replication and idempotent produce, for
 * spin (replication/model/check.sh runs it; `make model`).
 *
 * R replicas of one partition. A controller (etcd in Tally) elects leaders from the
 * ISR with a new leader epoch; every log entry carries the epoch of the leader that
 * appended it. Followers fetch from the leader one entry at a time; a fetch at offset
 * x tells the leader the follower holds x entries, and answers with the leader's high
 * watermark (HW). The leader's HW is the least log end among the ISR; the producer's
 * record is acknowledged (acks=all) once it is below the HW. Replicas crash and
 * restart (their logs are fsynced, their HW checkpoints survive) and leaders are
 * deposed while alive (a zombie fenced by the epoch). A follower that restarts or
 * sees a new leader truncates before fetching:
 *   default          by leader epoch (KIP-101 with KIP-279): it asks the leader for the
 *                    end of the largest epoch <= its last one and cuts there, until
 *                    its last entry agrees
 *   -DTRUNCATE_BY_HW to its high watermark: the bug KIP-101 fixed
 * The producer sends values 1..NV in order, one in flight, and retries the same value
 * on the next leader until it is acknowledged. The leader dedupes a retry it already
 * holds (the producer's sequence, which Tally rebuilds from the replicated batches);
 * -DNO_DEDUPE turns that off. -DHW_FROM_LOG_END makes a restarted replica take its log
 * end as its HW, as Tally did when the chaos harness's seed 914 lost acknowledged
 * records (docs/reliability.md, finding 0).
 * The ISR the store holds (inisr, which elections read) and the one the leader has
 * applied (lisr) differ between the leader's ISR change committing and its echo coming
 * back (a late watch, or a leader cut off the store). The leader asks for a change only
 * with the store's ISR applied (its CAS on the revision), and its HW counts the maximal
 * ISR: lisr plus the additions it asked for (pend; Kafka's KIP-497). -DNO_MAXIMAL_ISR
 * counts lisr alone, as Tally did before review R5.
 * Checked in every reachable state (the monitor): no acknowledged value is missing from
 * the live leader's log; no log holds a value twice; every replica's log agrees with
 * the live leader's below that replica's HW. */

#ifndef R
#define R 2
#endif
#define L      4   /* log capacity */
#define NV     2   /* values the producer sends */
#define MAXEP  3   /* elections explored */
#define NONE   255

byte log[R * L];   /* value at (replica, offset) */
byte lep[R * L];   /* its leader epoch */
byte leo[R];       /* log end offset */
byte hw[R];        /* high watermark as the replica knows it */
byte seen[R];      /* leader's view of each follower's log end, from its last fetch */
bool alive[R];
bool inisr[R];      /* the ISR in the store: what elections read */
bool lisr[R];       /* the ISR the leader has applied */
bool pend[R];       /* additions the leader asked for since it applied lisr */
bool synced = true; /* the leader has applied the store's ISR (its CAS may go) */
bool needtrunc[R]; /* must truncate before it fetches */
byte leader = 0;
byte epoch = 0;
byte pending = 1;  /* the value the producer is sending */
bool acked[NV + 1];

#define E(r, i) ((r) * L + (i))
#define UP(r)   ((r) != NONE && alive[r] && leader == (r))
#define MIN(a, b) ((a) < (b) -> (a) : (b))

/* found = value v is in replica r's log */
inline has(r, v) {
	found = false;
	i = 0;
	do
	:: i < leo[r] -> if :: log[E(r, i)] == v -> found = true :: else fi; i++
	:: else -> break
	od
}

/* Kafka's OffsetsForLeaderEpoch with KIP-279, repeated until the follower's last
 * entry is one the leader has: cut at the end of the largest leader epoch <= the
 * follower's last epoch, as the leader and the follower each have it. */
inline truncate_by_epoch(f) {
	do
	:: leo[f] == 0 -> break
	:: else ->
		e = lep[E(f, leo[f] - 1)];
		/* the largest epoch <= e in the leader's log, and its end there */
		k = 0; found = false; i = 0;
		do
		:: i < leo[leader] ->
			if :: lep[E(leader, i)] <= e -> k = lep[E(leader, i)]; found = true :: else fi;
			i++
		:: else -> break
		od;
		if
		:: !found -> cut = 0
		:: else ->
			cut = leo[leader]; i = 0;
			do
			:: i < leo[leader] -> if :: lep[E(leader, i)] > k -> cut = i; break :: else -> i++ fi
			:: else -> break
			od;
			i = 0;
			do
			:: i < leo[f] -> if :: lep[E(f, i)] > k -> cut = MIN(cut, i); break :: else -> i++ fi
			:: else -> break
			od
		fi;
		if :: cut >= leo[f] -> break :: else -> leo[f] = cut fi
	od;
	hw[f] = MIN(hw[f], leo[f])
}

inline become_follower(f) {
#ifdef TRUNCATE_BY_HW
	leo[f] = MIN(leo[f], hw[f]);
	printf("r%d truncates to its HW %d\n", f, leo[f]);
	needtrunc[f] = false
#else
	needtrunc[f] = true
#endif
}

active proctype cluster()
{
	byte f, i, k, e, cut, m;
	bool found;
	int r;
	r = 0;
	do
	:: r < R -> alive[r] = true; inisr[r] = true; lisr[r] = true; r++
	:: else -> break
	od;
end_loop:
	do
	:: select(f : 0 .. R - 1);
	if
	/* the producer's record reaches the leader */
	:: atomic {
		UP(leader) && pending <= NV && leo[leader] < L ->
		has(leader, pending);
#ifdef NO_DEDUPE
		found = false;
#endif
		if
		:: !found -> log[E(leader, leo[leader])] = pending; lep[E(leader, leo[leader])] = epoch;
			leo[leader]++;
			printf("r%d (leader, epoch %d) appends value %d at offset %d\n", leader, epoch,
			       pending, leo[leader] - 1)
		:: else
		fi
	}
	/* acknowledged once below the leader's HW */
	:: atomic {
		UP(leader) && pending <= NV ->
		found = false; i = 0;
		do
		:: i < hw[leader] -> if :: log[E(leader, i)] == pending -> found = true :: else fi; i++
		:: else -> break
		od;
		if
		:: found -> acked[pending] = true;
			printf("value %d acknowledged (leader r%d, HW %d)\n", pending, leader, hw[leader]);
			pending++
		:: else
		fi
	}
	/* a follower fetches one entry */
	:: atomic {
		alive[f] && f != leader && !needtrunc[f] && UP(leader) ->
		seen[f] = leo[f];
		if
		:: leo[f] < leo[leader] && leo[f] < L ->
			log[E(f, leo[f])] = log[E(leader, leo[f])];
			lep[E(f, leo[f])] = lep[E(leader, leo[f])];
			leo[f]++
		:: else
		fi;
		hw[f] = MIN(hw[leader], leo[f]);
		printf("r%d fetches: log end %d, HW %d\n", f, leo[f], hw[f])
	}
	/* the leader advances its HW to the least log end of the ISR */
	:: atomic {
		UP(leader) ->
		m = leo[leader]; i = 0;
		do
#ifdef NO_MAXIMAL_ISR
		:: i < R -> if :: lisr[i] && i != leader -> m = MIN(m, seen[i]) :: else fi; i++
#else
		:: i < R -> if :: (lisr[i] || pend[i]) && i != leader -> m = MIN(m, seen[i]) :: else fi; i++
#endif
		:: else -> break
		od;
		if :: m > hw[leader] -> hw[leader] = m; printf("r%d (leader) HW -> %d\n", leader, m) :: else fi
	}
	/* the leader's CAS: the ISR shrinks by a lagging follower, or takes back one that
	 * caught up; committed in the store, applied by the leader only at its echo */
	:: atomic {
		UP(leader) && f != leader && synced ->
		if
		:: lisr[f] && seen[f] < leo[leader] -> inisr[f] = false; synced = false;
			printf("r%d leaves the ISR (store)\n", f)
		:: !lisr[f] && alive[f] && !needtrunc[f] && seen[f] == leo[leader] -> inisr[f] = true;
			pend[f] = true; synced = false; printf("r%d joins the ISR (store)\n", f)
		:: else
		fi
	}
	/* the echo: the leader applies the store's ISR, which ends its pending additions */
	:: atomic {
		UP(leader) && !synced ->
		i = 0;
		do
		:: i < R -> lisr[i] = inisr[i]; pend[i] = false; i++
		:: else -> break
		od;
		synced = true;
		printf("r%d (leader) applies the store's ISR\n", leader)
	}
	/* a replica crashes (kill -9): its log and HW checkpoint stay on disk */
	:: atomic { alive[f] -> alive[f] = false; printf("r%d crashes\n", f) }
	/* it restarts; a former leader the controller still names gives up the role */
	:: atomic {
		!alive[f] ->
		alive[f] = true;
#ifdef HW_FROM_LOG_END
		hw[f] = leo[f]; /* no HW checkpoint: recovery trusts the whole log (seed 914) */
#endif
		printf("r%d restarts (log end %d, HW %d)\n", f, leo[f], hw[f]);
		if :: leader == f -> leader = NONE :: else fi;
		become_follower(f)
	}
	/* the controller elects a live ISR member: the leader died, or it is deposed
	 * alive (a paused zombie whose session expired), then fenced by the epoch */
	:: atomic {
		epoch < MAXEP && alive[f] && inisr[f] && f != leader ->
		if
		:: leader != NONE && alive[leader] -> become_follower(leader)
		:: leader != NONE && !alive[leader] -> inisr[leader] = false
		:: leader == NONE
		fi;
		epoch++;
		leader = f;
		printf("r%d elected leader, epoch %d (log end %d)\n", f, epoch, leo[f]);
		needtrunc[f] = false;
		synced = true;
		i = 0;
		do
		:: i < R -> seen[i] = 0; lisr[i] = inisr[i]; pend[i] = false;
			if :: i != f && alive[i] && i != leader -> become_follower(i) :: else fi;
			i++
		:: else -> break
		od
	}
	/* a follower truncates by leader epoch before it fetches again */
	:: atomic {
		alive[f] && needtrunc[f] && f != leader && UP(leader) ->
		truncate_by_epoch(f);
		needtrunc[f] = false;
		printf("r%d truncates by leader epoch to %d\n", f, leo[f])
	}
	:: else
	fi
	od
}

/* The invariants, checked in every reachable state. */
active proctype monitor()
{
	byte r, i, j, v;
	bool found;
	atomic {
		/* no value stored twice in any log */
		r = 0;
		do
		:: r < R ->
			i = 0;
			do
			:: i < leo[r] ->
				j = i + 1;
				do
				:: j < leo[r] -> assert(log[E(r, i)] != log[E(r, j)]); j++
				:: else -> break
				od;
				i++
			:: else -> break
			od;
			r++
		:: else -> break
		od;
		if
		:: UP(leader) ->
			/* no acknowledged value lost */
			v = 1;
			do
			:: v <= NV ->
				if
				:: acked[v] ->
					found = false; i = 0;
					do
					:: i < leo[leader] -> if :: log[E(leader, i)] == v -> found = true :: else fi; i++
					:: else -> break
					od;
					assert(found)
				:: else
				fi;
				v++
			:: else -> break
			od;
			/* logs agree with the leader's below each replica's HW */
			r = 0;
			do
			:: r < R ->
				i = 0;
				do
				:: i < hw[r] && alive[r] ->
					assert(i < leo[leader] && log[E(r, i)] == log[E(leader, i)]);
					i++
				:: else -> break
				od;
				r++
			:: else -> break
			od
		:: else
		fi
	}
}
