//go:build linux && cgo

/*
 * C helpers of package verbs; see shim.h. Functions that fail return NULL
 * or -1 with errno set (cgo's two-result call reads it), or return the
 * errno itself as a positive int, as libibverbs does; verbs.go handles both.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <endian.h>

/* ---- devices ---- */

struct ibv_context *goiser_open_device(const char *name)
{
	int n = 0, i;
	struct ibv_context *found = NULL;
	struct ibv_context **list = rdma_get_devices(&n);

	if (!list)
		return NULL;
	for (i = 0; i < n; i++) {
		if (list[i] && strcmp(ibv_get_device_name(list[i]->device), name) == 0) {
			found = list[i];
			break;
		}
	}
	rdma_free_devices(list);
	if (!found)
		errno = ENODEV;
	return found;
}

int goiser_device_count(void)
{
	int n = 0;
	struct ibv_context **list = rdma_get_devices(&n);

	if (!list)
		return -1;
	rdma_free_devices(list);
	return n;
}

int goiser_device_name(int i, char *buf, int len, uint64_t *guid)
{
	int n = 0;
	struct ibv_context **list = rdma_get_devices(&n);

	if (!list)
		return -1;
	if (i >= n || !list[i]) {
		rdma_free_devices(list);
		errno = ENODEV;
		return -1;
	}
	strncpy(buf, ibv_get_device_name(list[i]->device), len - 1);
	buf[len - 1] = 0;
	*guid = be64toh(ibv_get_device_guid(list[i]->device));
	rdma_free_devices(list);
	return 0;
}

const char *goiser_context_name(struct ibv_context *ctx)
{
	return ibv_get_device_name(ctx->device);
}

uint64_t goiser_context_guid(struct ibv_context *ctx)
{
	return be64toh(ibv_get_device_guid(ctx->device));
}

int goiser_query_device(struct ibv_context *ctx, goiser_dev_attr *out)
{
	struct ibv_device_attr a;
	int rc = ibv_query_device(ctx, &a);

	if (rc)
		return rc;
	memcpy(out->fw_ver, a.fw_ver, sizeof(out->fw_ver));
	out->fw_ver[sizeof(out->fw_ver) - 1] = 0;
	out->node_guid = be64toh(a.node_guid);
	out->sys_image_guid = be64toh(a.sys_image_guid);
	out->max_mr_size = a.max_mr_size;
	out->vendor_id = a.vendor_id;
	out->vendor_part_id = a.vendor_part_id;
	out->hw_ver = a.hw_ver;
	out->max_qp = a.max_qp;
	out->max_qp_wr = a.max_qp_wr;
	out->max_sge = a.max_sge;
	out->max_cq = a.max_cq;
	out->max_cqe = a.max_cqe;
	out->max_mr = a.max_mr;
	out->max_pd = a.max_pd;
	out->max_qp_rd_atom = a.max_qp_rd_atom;
	out->max_qp_init_rd_atom = a.max_qp_init_rd_atom;
	out->phys_port_cnt = a.phys_port_cnt;
	return 0;
}

int goiser_query_port(struct ibv_context *ctx, uint8_t port, goiser_port_attr *out)
{
	struct ibv_port_attr a;
	int rc = ibv_query_port(ctx, port, &a);

	if (rc)
		return rc;
	out->state = a.state;
	out->max_mtu = a.max_mtu;
	out->active_mtu = a.active_mtu;
	out->gid_tbl_len = a.gid_tbl_len;
	out->lid = a.lid;
	out->sm_lid = a.sm_lid;
	out->link_layer = a.link_layer;
	out->active_width = a.active_width;
	out->active_speed = a.active_speed;
	return 0;
}

int goiser_query_gid(struct ibv_context *ctx, uint8_t port, int index, uint8_t *gid)
{
	union ibv_gid g;
	int rc = ibv_query_gid(ctx, port, index, &g);

	if (rc)
		return rc;
	memcpy(gid, g.raw, 16);
	return 0;
}

/* ---- memory ---- */

struct ibv_mr *goiser_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
	return ibv_reg_mr(pd, addr, len, access);
}

/* ---- completion queues ---- */

goiser_cq *goiser_cq_create(struct ibv_context *ctx, int entries, int vector)
{
	int err;
	goiser_cq *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cap = entries;
	c->wc = calloc(entries, sizeof(*c->wc));
	c->out = calloc(entries, sizeof(*c->out));
	if (!c->wc || !c->out) {
		err = ENOMEM;
		goto fail;
	}
	c->ch = ibv_create_comp_channel(ctx);
	if (!c->ch) {
		err = errno;
		goto fail;
	}
	if (fcntl(c->ch->fd, F_SETFL, fcntl(c->ch->fd, F_GETFL) | O_NONBLOCK) < 0) {
		err = errno;
		goto fail;
	}
	c->cq = ibv_create_cq(ctx, entries, NULL, c->ch, vector);
	if (!c->cq) {
		err = errno;
		goto fail;
	}
	return c;
fail:
	if (c->ch)
		ibv_destroy_comp_channel(c->ch);
	free(c->wc);
	free(c->out);
	free(c);
	errno = err ? err : EIO;
	return NULL;
}

/*
 * goiser_cq_destroy destroys the CQ, then its completion channel, and frees
 * c. When ibv_destroy_cq fails it returns that errno and frees nothing: the
 * CQ lives on and the caller may retry. Once the CQ is gone c is freed
 * whatever happens to the channel; a failure to destroy the channel (it
 * cannot be busy: its one CQ is gone) is reported in *chan_rc.
 */
int goiser_cq_destroy(goiser_cq *c, int *chan_rc)
{
	int rc = ibv_destroy_cq(c->cq);

	*chan_rc = 0;
	if (rc)
		return rc;
	*chan_rc = ibv_destroy_comp_channel(c->ch);
	free(c->wc);
	free(c->out);
	free(c);
	return 0;
}

static uint8_t wc_opcode(enum ibv_wc_opcode op)
{
	switch (op) {
	case IBV_WC_SEND:
		return 1;
	case IBV_WC_RDMA_WRITE:
		return 2;
	case IBV_WC_RDMA_READ:
		return 3;
	case IBV_WC_RECV:
		return 4;
	case IBV_WC_RECV_RDMA_WITH_IMM:
		return 5;
	default:
		return 0;
	}
}

int goiser_cq_poll(goiser_cq *c, int n)
{
	int got, i;

	if (n > c->cap)
		n = c->cap;
	got = ibv_poll_cq(c->cq, n, c->wc);
	if (got < 0)
		return got == -1 ? -(errno ? errno : EIO) : got;
	for (i = 0; i < got; i++) {
		struct ibv_wc *w = &c->wc[i];
		goiser_wc *o = &c->out[i];

		o->id = w->wr_id;
		o->status = w->status;
		o->vendor_err = w->vendor_err;
		o->qp_num = w->qp_num;
		o->opcode = 0;
		o->flags = 0;
		o->byte_len = 0;
		o->imm = 0;
		o->inv_rkey = 0;
		if (w->status != IBV_WC_SUCCESS)
			continue;
		o->opcode = wc_opcode(w->opcode);
		o->byte_len = w->byte_len;
		if (w->wc_flags & IBV_WC_WITH_IMM) {
			o->flags |= 1;
			o->imm = ntohl(w->imm_data);
		} else if (w->wc_flags & IBV_WC_WITH_INV) {
			o->flags |= 2;
			o->inv_rkey = w->invalidated_rkey;
		}
	}
	return got;
}

int goiser_cq_arm(goiser_cq *c, int solicited_only)
{
	return ibv_req_notify_cq(c->cq, solicited_only);
}

/* Returns 0 when an event was taken and acknowledged, else an errno
 * (EAGAIN when none is pending: the channel's fd is non-blocking). */
int goiser_cq_get_event(goiser_cq *c)
{
	struct ibv_cq *cq;
	void *ctx;

	if (ibv_get_cq_event(c->ch, &cq, &ctx))
		return errno ? errno : EIO;
	ibv_ack_cq_events(cq, 1);
	return 0;
}

/* ---- queue pairs ---- */

static void qp_free_arrays(goiser_qp *q)
{
	free(q->swr);
	free(q->wr);
	free(q->ssge);
	free(q->rwr);
	free(q->rw);
	free(q->rsge);
	free(q);
}

goiser_qp *goiser_qp_arrays(int max_send, int max_recv, int send_sge, int recv_sge)
{
	goiser_qp *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->send_cap = max_send;
	q->send_sge = send_sge;
	q->recv_cap = max_recv;
	q->recv_sge = recv_sge;
	q->swr = calloc(max_send, sizeof(*q->swr));
	q->wr = calloc(max_send, sizeof(*q->wr));
	q->ssge = calloc((size_t)max_send * send_sge, sizeof(*q->ssge));
	q->rwr = calloc(max_recv, sizeof(*q->rwr));
	q->rw = calloc(max_recv, sizeof(*q->rw));
	q->rsge = calloc((size_t)max_recv * recv_sge, sizeof(*q->rsge));
	if (!q->swr || !q->wr || !q->ssge || !q->rwr || !q->rw || !q->rsge) {
		qp_free_arrays(q);
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

void goiser_qp_free_arrays(goiser_qp *q)
{
	qp_free_arrays(q);
}

goiser_qp *goiser_qp_create(struct ibv_pd *pd, struct rdma_cm_id *id, goiser_cq *send, goiser_cq *recv,
			    int max_send, int max_recv, int send_sge, int recv_sge, int max_inline, int sig_all)
{
	struct ibv_qp_init_attr a;
	int err;
	goiser_qp *q = goiser_qp_arrays(max_send, max_recv, send_sge, recv_sge);

	if (!q)
		return NULL;
	memset(&a, 0, sizeof(a));
	a.send_cq = send->cq;
	a.recv_cq = recv->cq;
	a.qp_type = IBV_QPT_RC;
	a.sq_sig_all = sig_all;
	a.cap.max_send_wr = max_send;
	a.cap.max_recv_wr = max_recv;
	a.cap.max_send_sge = send_sge;
	a.cap.max_recv_sge = recv_sge;
	a.cap.max_inline_data = max_inline;
	if (id) {
		if (rdma_create_qp(id, pd, &a)) {
			err = errno;
			qp_free_arrays(q);
			errno = err;
			return NULL;
		}
		q->qp = id->qp;
	} else {
		q->qp = ibv_create_qp(pd, &a);
		if (!q->qp) {
			err = errno;
			qp_free_arrays(q);
			errno = err;
			return NULL;
		}
	}
	return q;
}

/* Destroys the QP (through the CM when id is set) and frees the arrays. */
/*
 * goiser_qp_destroy destroys the QP (rdma_destroy_qp for a CM QP, which
 * cannot fail) and frees its arrays. When ibv_destroy_qp fails it returns
 * that errno and frees nothing: the QP lives on and the caller may retry.
 */
int goiser_qp_destroy(goiser_qp *q, struct rdma_cm_id *id)
{
	int rc = 0;

	if (id)
		rdma_destroy_qp(id);
	else
		rc = ibv_destroy_qp(q->qp);
	if (rc)
		return rc;
	qp_free_arrays(q);
	return 0;
}

int goiser_qp_modify(goiser_qp *q, const goiser_qp_attr *a)
{
	struct ibv_qp_attr x;
	int mask = IBV_QP_STATE;

	memset(&x, 0, sizeof(x));
	x.qp_state = a->state;
	switch (a->state) {
	case IBV_QPS_INIT:
		x.pkey_index = a->pkey_index;
		x.port_num = a->port;
		x.qp_access_flags = a->access;
		mask |= IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
		break;
	case IBV_QPS_RTR:
		x.path_mtu = a->path_mtu;
		x.dest_qp_num = a->dest_qpn;
		x.rq_psn = a->rq_psn;
		x.max_dest_rd_atomic = a->max_dest_rd_atomic;
		x.min_rnr_timer = a->min_rnr_timer;
		x.ah_attr.dlid = a->dlid;
		x.ah_attr.port_num = a->port;
		x.ah_attr.is_global = a->is_global;
		if (a->is_global) {
			memcpy(x.ah_attr.grh.dgid.raw, a->dgid, 16);
			x.ah_attr.grh.sgid_index = a->sgid_index;
			x.ah_attr.grh.hop_limit = a->hop_limit;
		}
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			IBV_QP_MIN_RNR_TIMER;
		break;
	case IBV_QPS_RTS:
		x.sq_psn = a->sq_psn;
		x.timeout = a->timeout;
		x.retry_cnt = a->retry_cnt;
		x.rnr_retry = a->rnr_retry;
		x.max_rd_atomic = a->max_rd_atomic;
		mask |= IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
		break;
	default:
		break;
	}
	return ibv_modify_qp(q->qp, &x, mask);
}

/* Returns the QP state (>= 0) or -errno. */
int goiser_qp_state(goiser_qp *q)
{
	struct ibv_qp_attr x;
	struct ibv_qp_init_attr init;
	int rc = ibv_query_qp(q->qp, &x, IBV_QP_STATE, &init);

	if (rc)
		return rc > 0 ? -rc : rc;
	return x.qp_state;
}

static enum ibv_wr_opcode wr_opcode(uint8_t op)
{
	switch (op) {
	case GOISER_OP_SEND_IMM:
		return IBV_WR_SEND_WITH_IMM;
	case GOISER_OP_SEND_INV:
		return IBV_WR_SEND_WITH_INV;
	case GOISER_OP_RDMA_WRITE:
		return IBV_WR_RDMA_WRITE;
	case GOISER_OP_RDMA_WRITE_IMM:
		return IBV_WR_RDMA_WRITE_WITH_IMM;
	case GOISER_OP_RDMA_READ:
		return IBV_WR_RDMA_READ;
	default:
		return IBV_WR_SEND;
	}
}

/* Builds the chain of ibv_send_wr from swr[0..n). */
static void build_send(goiser_qp *q, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		goiser_send_wr *s = &q->swr[i];
		struct ibv_send_wr *w = &q->wr[i];
		unsigned int f = 0;

		memset(w, 0, sizeof(*w));
		w->wr_id = s->id;
		w->sg_list = &q->ssge[(size_t)i * q->send_sge];
		w->num_sge = s->num_sge;
		w->opcode = wr_opcode(s->op);
		if (s->flags & GOISER_F_SIGNALED)
			f |= IBV_SEND_SIGNALED;
		if (s->flags & GOISER_F_SOLICITED)
			f |= IBV_SEND_SOLICITED;
		if (s->flags & GOISER_F_INLINE)
			f |= IBV_SEND_INLINE;
		if (s->flags & GOISER_F_FENCE)
			f |= IBV_SEND_FENCE;
		w->send_flags = f;
		switch (s->op) {
		case GOISER_OP_SEND_IMM:
			w->imm_data = htonl(s->imm);
			break;
		case GOISER_OP_SEND_INV:
			w->invalidate_rkey = s->inv_rkey;
			break;
		case GOISER_OP_RDMA_WRITE_IMM:
			w->imm_data = htonl(s->imm);
			/* fall through */
		case GOISER_OP_RDMA_WRITE:
		case GOISER_OP_RDMA_READ:
			w->wr.rdma.remote_addr = s->remote;
			w->wr.rdma.rkey = s->rkey;
			break;
		}
		w->next = i + 1 < n ? &q->wr[i + 1] : NULL;
	}
}

/* Posts swr[0..n) in one ibv_post_send call; q->accepted says how many
 * the device took. Returns 0 or an errno. */
int goiser_post_send(goiser_qp *q, int n)
{
	struct ibv_send_wr *bad = NULL;
	int rc;

	build_send(q, n);
	rc = ibv_post_send(q->qp, q->wr, &bad);
	q->accepted = rc == 0 ? n : (bad ? (int)(bad - q->wr) : 0);
	return rc;
}

/* goiser_post_send without a device: builds the chain and accepts all.
 * BenchmarkPostSendNoDevice measures the provider's own cost with it. */
int goiser_post_send_dry(goiser_qp *q, int n)
{
	build_send(q, n);
	q->accepted = n;
	return 0;
}

/* Posts rwr[0..n) in one ibv_post_recv call; see goiser_post_send. */
int goiser_post_recv(goiser_qp *q, int n)
{
	struct ibv_recv_wr *bad = NULL;
	int i, rc;

	for (i = 0; i < n; i++) {
		struct ibv_recv_wr *w = &q->rw[i];

		w->wr_id = q->rwr[i].id;
		w->sg_list = &q->rsge[(size_t)i * q->recv_sge];
		w->num_sge = q->rwr[i].num_sge;
		w->next = i + 1 < n ? &q->rw[i + 1] : NULL;
	}
	rc = ibv_post_recv(q->qp, q->rw, &bad);
	q->accepted = rc == 0 ? n : (bad ? (int)(bad - q->rw) : 0);
	return rc;
}

int goiser_nop(int x)
{
	return x + 1;
}

/* ---- RDMA CM ---- */

int goiser_cm_nonblock(struct rdma_event_channel *ch)
{
	int fl = fcntl(ch->fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(ch->fd, F_SETFL, fl | O_NONBLOCK);
}

static socklen_t to_sockaddr(const goiser_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(a->port);
	memcpy(&s4->sin_addr, a->ip, 4);
	return sizeof(*s4);
}

static void from_sockaddr(const struct sockaddr *sa, goiser_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		a->family = AF_INET6;
		a->port = ntohs(s6->sin6_port);
		memcpy(a->ip, &s6->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		a->family = AF_INET;
		a->port = ntohs(s4->sin_port);
		memcpy(a->ip, &s4->sin_addr, 4);
	}
}

int goiser_cm_bind(struct rdma_cm_id *id, const goiser_addr *a)
{
	struct sockaddr_storage ss;

	to_sockaddr(a, &ss);
	return rdma_bind_addr(id, (struct sockaddr *)&ss);
}

int goiser_cm_resolve_addr(struct rdma_cm_id *id, const goiser_addr *src, const goiser_addr *dst, int timeout_ms)
{
	struct sockaddr_storage s, d;

	to_sockaddr(dst, &d);
	if (src && src->family) {
		to_sockaddr(src, &s);
		return rdma_resolve_addr(id, (struct sockaddr *)&s, (struct sockaddr *)&d, timeout_ms);
	}
	return rdma_resolve_addr(id, NULL, (struct sockaddr *)&d, timeout_ms);
}

int goiser_cm_addr(struct rdma_cm_id *id, int peer, goiser_addr *out)
{
	from_sockaddr(peer ? rdma_get_peer_addr(id) : rdma_get_local_addr(id), out);
	return 0;
}

/* Takes one CM event, copies what Go needs and acknowledges it. Returns 0
 * or an errno (EAGAIN when none is pending). */
int goiser_cm_get_event(struct rdma_event_channel *ch, goiser_cm_event *out)
{
	struct rdma_cm_event *e;
	int n;

	if (rdma_get_cm_event(ch, &e))
		return errno ? errno : EIO;
	out->id = e->id;
	out->listen_id = e->listen_id;
	out->event = e->event;
	out->status = e->status;
	out->pdata_len = 0;
	out->responder_resources = 0;
	out->initiator_depth = 0;
	out->retry_count = 0;
	out->rnr_retry_count = 0;
	out->verbs = NULL;
	memset(&out->local, 0, sizeof(out->local));
	memset(&out->remote, 0, sizeof(out->remote));
	switch (e->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
	case RDMA_CM_EVENT_ESTABLISHED:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_CONNECT_RESPONSE:
		n = e->param.conn.private_data_len;
		if (n > (int)sizeof(out->pdata))
			n = sizeof(out->pdata);
		if (e->param.conn.private_data && n > 0)
			memcpy(out->pdata, e->param.conn.private_data, n);
		else
			n = 0;
		out->pdata_len = n;
		out->responder_resources = e->param.conn.responder_resources;
		out->initiator_depth = e->param.conn.initiator_depth;
		out->retry_count = e->param.conn.retry_count;
		out->rnr_retry_count = e->param.conn.rnr_retry_count;
		break;
	default:
		break;
	}
	if (e->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
		out->verbs = e->id->verbs;
		from_sockaddr(rdma_get_local_addr(e->id), &out->local);
		from_sockaddr(rdma_get_peer_addr(e->id), &out->remote);
	}
	rdma_ack_cm_event(e);
	return 0;
}

int goiser_cm_connect(struct rdma_cm_id *id, uint8_t resp, uint8_t init, uint8_t retry, uint8_t rnr,
		      const void *pdata, int len)
{
	struct rdma_conn_param p;

	memset(&p, 0, sizeof(p));
	p.responder_resources = resp;
	p.initiator_depth = init;
	p.retry_count = retry;
	p.rnr_retry_count = rnr;
	p.private_data = len > 0 ? pdata : NULL;
	p.private_data_len = len;
	return rdma_connect(id, &p);
}

int goiser_cm_accept(struct rdma_cm_id *id, uint8_t resp, uint8_t init, uint8_t rnr, const void *pdata, int len)
{
	struct rdma_conn_param p;

	memset(&p, 0, sizeof(p));
	p.responder_resources = resp;
	p.initiator_depth = init;
	p.rnr_retry_count = rnr;
	p.private_data = len > 0 ? pdata : NULL;
	p.private_data_len = len;
	return rdma_accept(id, &p);
}

struct ibv_context *goiser_cm_verbs(struct rdma_cm_id *id)
{
	return id->verbs;
}
