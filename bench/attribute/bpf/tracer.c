// SPDX-License-Identifier: (MIT OR GPL-2.0)
/* Where a target process's time goes: per-thread state accounting from
 * scheduler and syscall tracepoints, and socket receive-queue wait from the
 * sock tracepoints. Everything is aggregated in maps; nothing is sent to user
 * space per event. See doc.go for the definitions.
 *
 * The tracepoint context structs below are the layouts of the format files in
 * /sys/kernel/tracing/events/<group>/<name>/format read on Linux 6.18 x86_64.
 * They have been stable for years, but they are not CO-RE: the Go loader
 * (formats.go) compares every field used here with the running kernel's
 * format files before loading, and refuses to attach when one moved. */
#include "common.h"

char __license[] SEC("license") = "Dual MIT/GPL";

/* The process (thread group) to trace; set by the loader. */
volatile const __u32 target_tgid = 0;

/* Thread states, as seen by the accounting. */
enum {
	STATE_UNKNOWN = 0,  /* not yet seen change state: time is not counted */
	STATE_RUNNING = 1,  /* on a CPU */
	STATE_RUNNABLE = 2, /* woken or preempted, waiting in a run queue */
	STATE_BLOCKED = 3,  /* sleeping: waiting for an event, a lock, I/O */
	STATE_EXITED = 4,   /* gone: nothing more is counted */
};

/* One thread of the target. Times are nanoseconds of CLOCK_MONOTONIC
 * (bpf_ktime_get_ns); the interval since ts belongs to state and is not yet
 * in the sums (user space adds it when it reads a snapshot). */
struct thread {
	__u64 ts;
	__u64 user_ns;     /* on a CPU, not in a syscall */
	__u64 sys_ns;      /* on a CPU, in a syscall */
	__u64 runq_ns;     /* runnable, not running */
	__u64 blocked_ns;  /* sleeping */
	__u64 syscalls;    /* sys_enter events */
	__u64 wakeups;     /* blocked -> runnable transitions */
	__u64 preemptions; /* switched out while still runnable */
	__u32 state;
	__u32 in_syscall;  /* between sys_enter and sys_exit */
	__s64 syscall;     /* the id of the syscall it is in */
};

/* Socket receive statistics of the target, per CPU. */
struct sockstats {
	__u64 wait_ns;     /* sum of queue waits that ended in a read */
	__u64 waits;       /* reads that ended a timed queue wait */
	__u64 reads;       /* reads that returned data */
	__u64 bytes;       /* bytes those reads returned */
	__u64 empty_reads; /* reads that returned nothing or an error (EAGAIN) */
};

/* On-CPU time and count per syscall id, per CPU. */
struct syscallstat {
	__u64 count;
	__u64 ns;
};

#define MAX_SYSCALL 512

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);   /* struct sock * of a socket the target reads */
	__type(value, __u64); /* when data became ready to read; 0: none waiting */
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockstats);
} sockstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALL);
	__type(key, __u32);
	__type(value, struct syscallstat);
} syscalls SEC(".maps");

/* Tracepoint contexts: fields after the 8-byte common header. */
struct tp_sched_switch {
	__u64 common;
	char prev_comm[16];
	__s32 prev_pid;
	__s32 prev_prio;
	__s64 prev_state;
	char next_comm[16];
	__s32 next_pid;
	__s32 next_prio;
};

struct tp_sched_waking {
	__u64 common;
	char comm[16];
	__s32 pid;
	__s32 prio;
	__s32 target_cpu;
};

struct tp_sys_enter {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

struct tp_sys_exit {
	__u64 common;
	__s64 id;
	__s64 ret;
};

struct tp_sk_data_ready {
	__u64 common;
	__u64 skaddr;
	__u16 family;
	__u16 protocol;
	__u64 ip;
};

struct tp_sock_recv_length {
	__u64 common;
	__u64 sk;
	__u16 family;
	__u16 protocol;
	__s32 ret;
	__s32 flags;
};

/* prev_state bits (the print fmt of sched_switch): the low byte is the
 * task's sleep state (S D T t X Z P I); 0 there means it was still runnable
 * (0x100 set: preempted). */
#define STATE_SLEEP_MASK 0xff
#define STATE_DEAD_MASK (0x10 | 0x20) /* X, Z */

static __attribute__((always_inline)) void charge_syscall(struct thread *t, __u64 d)
{
	__u32 id = (__u32)t->syscall;
	if (t->syscall < 0 || id >= MAX_SYSCALL)
		return;
	struct syscallstat *s = bpf_map_lookup_elem(&syscalls, &id);
	if (s)
		s->ns += d;
}

/* account closes the interval [t->ts, now) into the sum of t's state. */
static __attribute__((always_inline)) void account(struct thread *t, __u64 now)
{
	if (t->ts != 0 && now > t->ts) {
		__u64 d = now - t->ts;
		switch (t->state) {
		case STATE_RUNNING:
			if (t->in_syscall) {
				t->sys_ns += d;
				charge_syscall(t, d);
			} else {
				t->user_ns += d;
			}
			break;
		case STATE_RUNNABLE:
			t->runq_ns += d;
			break;
		case STATE_BLOCKED:
			t->blocked_ns += d;
			break;
		}
	}
	t->ts = now;
}

/* current_thread returns the running thread's record when it belongs to the
 * target, adding it (running since now) the first time. */
static __attribute__((always_inline)) struct thread *current_thread(__u64 now)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid || target_tgid == 0)
		return 0;
	__u32 tid = (__u32)id;
	struct thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		return t;
	struct thread fresh = {.ts = now, .state = STATE_RUNNING};
	bpf_map_update_elem(&threads, &tid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct tp_sys_enter *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct thread *t = current_thread(now);
	if (!t)
		return 0;
	if (t->state == STATE_RUNNING)
		account(t, now);
	else
		t->ts = now; /* it ran unseen since an unknown time */
	t->state = STATE_RUNNING;
	t->in_syscall = 1;
	t->syscall = ctx->id;
	t->syscalls++;
	__u32 sid = (__u32)ctx->id;
	if (ctx->id >= 0 && sid < MAX_SYSCALL) {
		struct syscallstat *s = bpf_map_lookup_elem(&syscalls, &sid);
		if (s)
			s->count++;
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct tp_sys_exit *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct thread *t = current_thread(now);
	if (!t)
		return 0;
	if (t->state == STATE_RUNNING)
		account(t, now);
	else
		t->ts = now; /* it ran unseen since an unknown time */
	t->state = STATE_RUNNING;
	t->in_syscall = 0;
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int sched_switch(struct tp_sched_switch *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	/* At this tracepoint current is still prev. */
	struct thread *t = current_thread(now);
	if (t) {
		if (t->state == STATE_RUNNING)
			account(t, now);
		t->ts = now;
		if ((ctx->prev_state & STATE_SLEEP_MASK) == 0) {
			t->state = STATE_RUNNABLE;
			t->preemptions++;
		} else if (ctx->prev_state & STATE_DEAD_MASK) {
			t->state = STATE_EXITED;
		} else {
			t->state = STATE_BLOCKED;
		}
	}
	__u32 next = (__u32)ctx->next_pid;
	if (next == 0)
		return 0;
	t = bpf_map_lookup_elem(&threads, &next);
	if (t && t->state != STATE_EXITED) {
		account(t, now);
		t->state = STATE_RUNNING;
	}
	return 0;
}

SEC("tracepoint/sched/sched_waking")
int sched_waking(struct tp_sched_waking *ctx)
{
	__u32 tid = (__u32)ctx->pid;
	struct thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (!t || (t->state != STATE_BLOCKED && t->state != STATE_UNKNOWN))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	account(t, now);
	t->state = STATE_RUNNABLE;
	t->wakeups++;
	return 0;
}

SEC("tracepoint/sock/sk_data_ready")
int sk_data_ready(struct tp_sk_data_ready *ctx)
{
	__u64 sk = ctx->skaddr;
	__u64 *ready = bpf_map_lookup_elem(&socks, &sk);
	if (ready && *ready == 0)
		*ready = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int sock_recv_length(struct tp_sock_recv_length *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid || target_tgid == 0)
		return 0;
	__u32 zero = 0;
	struct sockstats *s = bpf_map_lookup_elem(&sockstats, &zero);
	if (!s)
		return 0;
	if (ctx->ret <= 0) {
		s->empty_reads++;
		return 0;
	}
	s->reads++;
	s->bytes += ctx->ret;
	__u64 sk = ctx->sk;
	__u64 *ready = bpf_map_lookup_elem(&socks, &sk);
	if (!ready) {
		__u64 none = 0;
		bpf_map_update_elem(&socks, &sk, &none, BPF_NOEXIST);
		return 0;
	}
	if (*ready != 0) {
		__u64 now = bpf_ktime_get_ns();
		if (now > *ready) {
			s->wait_ns += now - *ready;
			s->waits++;
		}
		*ready = 0;
	}
	return 0;
}
