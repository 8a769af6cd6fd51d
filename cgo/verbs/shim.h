/*
 * The C side of package verbs. Everything here is small and flat: Go fills
 * and reads the goiser_* structs (plain integers, no unions, no pointers to
 * Go memory), and each datapath helper is one cgo crossing per batch.
 *
 * Memory rule: every goiser_* object is allocated here with malloc and
 * freed here; Go keeps only the C pointer. No Go pointer is ever stored in
 * C memory.
 */
#ifndef GOISER_SHIM_H
#define GOISER_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* Opcode and flag numbering of package rdma/driver. */
enum {
	GOISER_OP_SEND = 1,
	GOISER_OP_SEND_IMM = 2,
	GOISER_OP_SEND_INV = 3,
	GOISER_OP_RDMA_WRITE = 4,
	GOISER_OP_RDMA_WRITE_IMM = 5,
	GOISER_OP_RDMA_READ = 6,
};
enum {
	GOISER_F_SIGNALED = 1 << 0,
	GOISER_F_SOLICITED = 1 << 1,
	GOISER_F_INLINE = 1 << 2,
	GOISER_F_FENCE = 1 << 3,
};

/* A send work request as Go writes it; its SGEs are in the QP's sge array
 * at [index * max_send_sge]. */
typedef struct {
	uint64_t id;
	uint64_t remote;
	uint32_t rkey;
	uint32_t imm; /* host byte order; converted to network order here */
	uint32_t inv_rkey;
	uint32_t num_sge;
	uint8_t op;
	uint8_t flags;
} goiser_send_wr;

/* A receive work request as Go writes it; SGEs at [index * max_recv_sge]. */
typedef struct {
	uint64_t id;
	uint32_t num_sge;
} goiser_recv_wr;

/* A completion as Go reads it (rdma/driver numbering). */
typedef struct {
	uint64_t id;
	uint32_t vendor_err;
	uint32_t byte_len;
	uint32_t imm; /* host byte order */
	uint32_t inv_rkey;
	uint32_t qp_num;
	uint8_t status;
	uint8_t opcode;
	uint8_t flags;
} goiser_wc;

/* Per-QP work-request arrays, allocated once at QP creation. */
typedef struct {
	struct ibv_qp *qp;
	int send_cap, send_sge;
	goiser_send_wr *swr;
	struct ibv_send_wr *wr;
	struct ibv_sge *ssge;
	int recv_cap, recv_sge;
	goiser_recv_wr *rwr;
	struct ibv_recv_wr *rw;
	struct ibv_sge *rsge;
	int accepted; /* out: WRs accepted by the last post */
} goiser_qp;

/* A CQ, its completion channel and its completion arrays. */
typedef struct {
	struct ibv_cq *cq;
	struct ibv_comp_channel *ch;
	int cap;
	struct ibv_wc *wc;
	goiser_wc *out;
} goiser_cq;

/* QP attributes for ibv_modify_qp (rdma/driver.QPAttr, flattened). */
typedef struct {
	int state;
	int path_mtu; /* enum ibv_mtu */
	uint32_t access;
	uint32_t dest_qpn, rq_psn, sq_psn;
	uint16_t pkey_index, dlid;
	uint8_t port, max_rd_atomic, max_dest_rd_atomic, min_rnr_timer;
	uint8_t timeout, retry_cnt, rnr_retry;
	uint8_t is_global, sgid_index, hop_limit;
	uint8_t dgid[16];
} goiser_qp_attr;

typedef struct {
	char fw_ver[64];
	uint64_t node_guid, sys_image_guid, max_mr_size;
	uint32_t vendor_id, vendor_part_id, hw_ver;
	int max_qp, max_qp_wr, max_sge, max_cq, max_cqe, max_mr, max_pd;
	int max_qp_rd_atom, max_qp_init_rd_atom;
	uint8_t phys_port_cnt;
} goiser_dev_attr;

typedef struct {
	int state, max_mtu, active_mtu, gid_tbl_len;
	uint16_t lid, sm_lid;
	uint8_t link_layer, active_width;
	uint32_t active_speed;
} goiser_port_attr;

/* An IP address and port (family AF_INET or AF_INET6; ip holds 4 or 16 bytes). */
typedef struct {
	int family;
	uint16_t port;
	uint8_t ip[16];
} goiser_addr;

/* A CM event copied out of librdmacm before it is acknowledged. */
typedef struct {
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen_id;
	int event;
	int status;
	uint8_t pdata[256];
	int pdata_len;
	uint8_t responder_resources, initiator_depth, retry_count, rnr_retry_count;
	struct ibv_context *verbs; /* the id's device (CONNECT_REQUEST) */
	goiser_addr local, remote; /* CONNECT_REQUEST */
} goiser_cm_event;

/* Devices (through librdmacm, so contexts are the ones CM ids use). */
struct ibv_context *goiser_open_device(const char *name);
int goiser_device_count(void);
int goiser_device_name(int i, char *buf, int len, uint64_t *guid);
const char *goiser_context_name(struct ibv_context *ctx);
uint64_t goiser_context_guid(struct ibv_context *ctx);
int goiser_query_device(struct ibv_context *ctx, goiser_dev_attr *out);
int goiser_query_port(struct ibv_context *ctx, uint8_t port, goiser_port_attr *out);
int goiser_query_gid(struct ibv_context *ctx, uint8_t port, int index, uint8_t *gid);

/* Memory. */
struct ibv_mr *goiser_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access);

/* CQs. */
goiser_cq *goiser_cq_create(struct ibv_context *ctx, int entries, int vector);
int goiser_cq_destroy(goiser_cq *c, int *chan_rc);
int goiser_cq_poll(goiser_cq *c, int n);
int goiser_cq_arm(goiser_cq *c, int solicited_only);
int goiser_cq_get_event(goiser_cq *c);

/* QPs. id is NULL for a QP created without the CM. */
goiser_qp *goiser_qp_create(struct ibv_pd *pd, struct rdma_cm_id *id, goiser_cq *send, goiser_cq *recv,
			    int max_send, int max_recv, int send_sge, int recv_sge, int max_inline, int sig_all);
int goiser_qp_destroy(goiser_qp *q, struct rdma_cm_id *id);
int goiser_qp_modify(goiser_qp *q, const goiser_qp_attr *a);
int goiser_qp_state(goiser_qp *q);
int goiser_post_send(goiser_qp *q, int n);
/* For benchmarks without a device: arrays only, and a post that builds the
 * chain but hands it to no device. */
goiser_qp *goiser_qp_arrays(int max_send, int max_recv, int send_sge, int recv_sge);
void goiser_qp_free_arrays(goiser_qp *q);
int goiser_post_send_dry(goiser_qp *q, int n);
int goiser_post_recv(goiser_qp *q, int n);

/* The cost of a cgo crossing, measured by a benchmark. */
int goiser_nop(int x);

/* RDMA CM. */
int goiser_cm_nonblock(struct rdma_event_channel *ch);
int goiser_cm_bind(struct rdma_cm_id *id, const goiser_addr *a);
int goiser_cm_resolve_addr(struct rdma_cm_id *id, const goiser_addr *src, const goiser_addr *dst, int timeout_ms);
int goiser_cm_addr(struct rdma_cm_id *id, int peer, goiser_addr *out);
int goiser_cm_get_event(struct rdma_event_channel *ch, goiser_cm_event *out);
int goiser_cm_connect(struct rdma_cm_id *id, uint8_t resp, uint8_t init, uint8_t retry, uint8_t rnr,
		      const void *pdata, int len);
int goiser_cm_accept(struct rdma_cm_id *id, uint8_t resp, uint8_t init, uint8_t rnr, const void *pdata, int len);
struct ibv_context *goiser_cm_verbs(struct rdma_cm_id *id);

#endif
