/* SPDX-License-Identifier: MIT */
/*
 * DOC: each local endpoint's class, as its interface's group
 *
 * The nftables ruleset dispatches workload traffic by the group of the
 * interface (`iifgroup`, `oifgroup`; lib/policy_compile.c, "Classes"), so
 * that an endpoint that comes or goes changes no verdict map. The map
 * ep_class of the ruleset in force says which class each local endpoint's
 * interface belongs to. This file makes the interfaces' groups say the same:
 *
 * - after each apply, where the class wanted differs from the group the
 *   agent set last (fw_groups);
 * - at agent start and every resync, for every interface, from a link dump:
 *   an `lx` interface that is no local endpoint's gets group 0, so its
 *   traffic is dropped as unknown (fail closed);
 * - as interfaces appear or change, from link events (fw_groups_watch, a
 *   thread): a pod's interface is usually created after the pass that
 *   compiled its class.
 *
 * Until its group is set, an interface's traffic is dropped as unknown.
 * Nothing is set before the first ruleset this process applied says what
 * it wants: after a restart, the groups the previous agent set stay, with
 * the table it left in force, until the new agent has applied its own.
 * A class number stands for the same pair of chains whatever else changes
 * (lib/policy_compile.c), except when a hash collision moves it: before a
 * difference is applied, the interfaces whose group number will stand for
 * other chains get group 0 (fw_groups_before), so no interface is ever
 * dispatched to chains that are not its own.
 *
 * One mutex covers the table and the one netlink socket that sends the
 * requests, for both threads.
 */
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "hmap.h"
#include "log.h"
#include "nft.h"

struct ent {
	char name[IFNAMSIZ];
	uint32_t want;   /* the class in the ruleset in force */
	bool wanted;     /* a local endpoint's interface (in ep_class) */
	bool is_set;     /* the agent set the group of ifindex to set */
	bool missing;    /* no such interface when last looked for */
	int ifindex;
	uint32_t set;
	unsigned seen;   /* the dump that last saw it */
	unsigned wgen;   /* the last call of wanted() that named it */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap ents = HMAP_INIT;
static unsigned dumps, wgens;
static unsigned long failures;
static bool known;     /* a ruleset this process applied said what it wants */
static struct nl *req; /* the requests (opened on first use) */

/* The request socket, with mu held; NULL (counted) if it cannot be opened. */
static struct nl *req_nl(void)
{
	int r;

	if (!req && (r = nl_open(&req)) < 0) {
		failures++;
		log_warnx("firewall: netlink: %s; interface groups not set", strerror(-r));
		req = NULL;
	}
	return req;
}

static bool eq_ent(const void *val, const void *key)
{
	return !strcmp(((const struct ent *)val)->name, key);
}

static struct ent *ent_get(const char *name, bool create)
{
	struct ent *e = hmap_find(&ents, hash_str(name), eq_ent, name);

	if (e || !create || strlen(name) >= IFNAMSIZ || !(e = calloc(1, sizeof(*e))))
		return e;
	strcpy(e->name, name);
	if (hmap_insert(&ents, hash_str(name), e) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

static bool is_workload(const char *name)
{
	return name[0] == 'l' && name[1] == 'x';
}

/* `"lxname" : 2147483649` -> name, group; false if it is not one */
static bool item_parse(const char *s, char name[IFNAMSIZ], uint32_t *group)
{
	const char *q, *end;

	while (isspace((unsigned char)*s))
		s++;
	if (*s != '"' || !(q = strchr(s + 1, '"')) || q - s - 1 >= IFNAMSIZ || strncmp(q, "\" : ", 4))
		return false;
	memcpy(name, s + 1, (size_t)(q - s - 1));
	name[q - s - 1] = '\0';
	return nft_u32_parse(q + 4, group, &end) && (!*end || isspace((unsigned char)*end));
}

/* Set ifindex's group, or count and log the failure. Called with mu held. */
static void set_group(struct ent *e, const char *name, int ifindex, uint32_t g)
{
	struct nl *nl = req_nl();
	int r = nl ? nl_link_set_group(nl, ifindex, g) : -ENOTCONN;

	if (r < 0) {
		failures++;
		log_warnx("firewall: cannot set the group of %s to %u: %s", name, g, strerror(-r));
		if (e)
			e->is_set = false;
		return;
	}
	if (e) {
		e->is_set = true;
		e->ifindex = ifindex;
		e->set = g;
	}
}

/* A link seen (dump or event), with mu held: its group as wanted. */
static void link_seen(int ifindex, const char *name, uint32_t group)
{
	struct ent *e;
	uint32_t want;

	if (!known || !is_workload(name))
		return;
	e = ent_get(name, false);
	want = e && e->wanted ? e->want : 0;
	if (e) {
		e->seen = dumps;
		e->missing = false;
	}
	if (group != want)
		set_group(e, name, ifindex, want);
	else if (e) {
		e->is_set = true;
		e->ifindex = ifindex;
		e->set = group;
	}
}

/* The workload links of a dump, handled once the dump is read: the socket
 * cannot send a request in the middle of a dump. */
struct seen {
	struct link {
		int ifindex;
		char name[IFNAMSIZ];
		uint32_t group;
	} *v;
	size_t n, cap;
};

static int dump_cb(int ifindex, const char *name, uint32_t group, void *arg)
{
	struct seen *s = arg;

	if (!is_workload(name) || strlen(name) >= IFNAMSIZ)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct link *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n].ifindex = ifindex;
	strcpy(s->v[s->n].name, name);
	s->v[s->n++].group = group;
	return 0;
}

/* The wanted classes from the items of ep_class ("name" : group), with mu
 * held. Entries no longer wanted stay until fw_groups has cleared them. */
static void wanted(char *const *items, size_t n)
{
	struct ent *e;
	size_t it = 0;

	wgens++;
	for (size_t i = 0; i < n; i++) {
		char name[IFNAMSIZ];
		uint32_t g;

		if (!item_parse(items[i], name, &g)) {
			log_warnx("firewall: ep_class: cannot read \"%s\"", items[i]);
			continue;
		}
		if (!(e = ent_get(name, true))) {
			failures++;
			continue;
		}
		/* newly wanted, or another class: look for it again (an
		 * interface still missing is not: its link event comes) */
		if (!e->wanted || e->want != g)
			e->missing = false;
		e->wanted = true;
		e->want = g;
		e->wgen = wgens;
	}
	while ((e = hmap_next(&ents, &it)))
		if (e->wgen != wgens)
			e->wanted = false;
}

void fw_groups_wanted(const struct nft_rs *rs, const char *text)
{
	size_t n = 0;
	char *const *items = NULL, **v = NULL, *copy = NULL;
	const char *p;

	if (rs) {
		items = nft_rs_map(rs, "ep_class", &n);
	} else if (text && (p = strstr(text, "\tmap ep_class {\n")) &&
		   (copy = strndup(p, strcspn(p, "}")))) {
		/* the text that went to nft -f: the same items, by hand, from
		 * the map's block only (it may have no elements) */
		char *s = strstr(copy, "elements = { "), *c;

		s = s ? s + 13 : NULL;
		v = calloc(strlen(copy) / 4 + 2, sizeof(*v));
		while (v && s && *s) {
			if ((c = strchr(s, ',')))
				*c++ = '\0';
			v[n++] = s;
			s = c;
		}
		items = v;
	}
	pthread_mutex_lock(&mu);
	wanted(items, items ? n : 0);
	known = true;
	pthread_mutex_unlock(&mu);
	free(v);
	free(copy);
}

/* What a class number stands for: its egress and ingress verdicts. */
struct meaning {
	uint32_t n;
	const char *v[2]; /* into rs's items; NULL: not in that map */
};

static int cmp_meaning(const void *a, const void *b)
{
	uint32_t x = ((const struct meaning *)a)->n, y = ((const struct meaning *)b)->n;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The classes of rs (from_ep, to_ep: "N : goto chain"), sorted by number;
 * count in *n, NULL when out of memory. */
static struct meaning *meanings(const struct nft_rs *rs, size_t *n)
{
	static const char *const maps[2] = { "from_ep", "to_ep" };
	size_t m[2];
	char *const *items[2] = { nft_rs_map(rs, maps[0], &m[0]), nft_rs_map(rs, maps[1], &m[1]) };
	struct meaning *v = calloc(m[0] + m[1] + 1, sizeof(*v));

	*n = 0;
	for (int k = 0; v && k < 2; k++) {
		size_t before = *n;

		for (size_t i = 0; i < m[k]; i++) {
			struct meaning key, *f;
			const char *rest;

			if (!nft_u32_parse(items[k][i], &key.n, &rest) || strncmp(rest, " : ", 3))
				continue;
			f = bsearch(&key, v, before, sizeof(*v), cmp_meaning);
			if (!f) {
				f = &v[(*n)++];
				f->n = key.n;
			}
			f->v[k] = rest + 3;
		}
		qsort(v, *n, sizeof(*v), cmp_meaning);
	}
	return v;
}

void fw_groups_before(const struct nft_rs *old, const struct nft_rs *rs)
{
	struct meaning *o, *n;
	uint32_t *changed;
	size_t no, nn, nc = 0;

	if (!old)
		return;
	o = meanings(old, &no);
	n = meanings(rs, &nn);
	changed = calloc(nn + 1, sizeof(*changed));
	/* the numbers in rs that stand for other chains than in old (only
	 * after a hash collision moved one: usually none) */
	for (size_t i = 0; o && n && changed && i < nn; i++) {
		struct meaning *f = bsearch(&n[i], o, no, sizeof(*o), cmp_meaning);

		if (!f || !same_str(f->v[0], n[i].v[0]) || !same_str(f->v[1], n[i].v[1]))
			changed[nc++] = n[i].n;
	}
	if (nc) {
		struct ent *e;
		size_t it = 0;

		pthread_mutex_lock(&mu);
		while (known && (e = hmap_next(&ents, &it)))
			/* (changed is sorted, as n is) */
			if (e->is_set && e->set &&
			    bsearch(&e->set, changed, nc, sizeof(*changed), cmp_u32)) {
				log_info("firewall: class %u of %s stands for other chains now: "
					 "group 0 until its own is set", e->set, e->name);
				set_group(e, e->name, e->ifindex, 0);
			}
		pthread_mutex_unlock(&mu);
	}
	free(o);
	free(n);
	free(changed);
}

/* Every link, with mu held: false when the dump failed. */
static bool dump_all(void)
{
	struct seen seen = { 0 };
	struct nl *nl = req_nl();
	int r = -ENOTCONN;

	dumps++;
	/* interrupted (links came or went meanwhile): again, a few times */
	for (int tries = 0; nl && tries < 5; tries++) {
		seen.n = 0;
		if ((r = nl_link_dump(nl, dump_cb, &seen)) != -EINTR)
			break;
	}
	if (r < 0) {
		failures++;
		log_warnx("firewall: cannot list the interfaces: %s", strerror(-r));
	}
	for (size_t i = 0; i < seen.n; i++)
		link_seen(seen.v[i].ifindex, seen.v[i].name, seen.v[i].group);
	free(seen.v);
	return r >= 0;
}

unsigned fw_groups(bool all)
{
	unsigned long before;
	struct ent *e;
	size_t it = 0;
	bool dumped = false;

	pthread_mutex_lock(&mu);
	before = failures;
	if (!known) { /* nothing applied yet: leave the groups as they are */
		pthread_mutex_unlock(&mu);
		return 0;
	}
	if (all)
		dumped = dump_all();
	while ((e = hmap_next(&ents, &it))) {
		if (dumped && e->seen != dumps) {
			e->is_set = false; /* not there */
			e->missing = true;
		}
		if (e->wanted && !e->missing && (!e->is_set || e->set != e->want)) {
			int ifindex = (int)if_nametoindex(e->name);

			if (ifindex)
				set_group(e, e->name, ifindex, e->want);
			else /* not there yet: its link event sets it */
				e->missing = true;
		} else if (!e->wanted) {
			if (e->is_set && e->set && (int)if_nametoindex(e->name) == e->ifindex)
				set_group(NULL, e->name, e->ifindex, 0);
			hmap_remove(&ents, hash_str(e->name), eq_ent, e->name);
			free(e);
		}
	}
	before = failures - before;
	pthread_mutex_unlock(&mu);
	return (unsigned)before;
}

static int event_cb(int ifindex, const char *name, uint32_t group, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	link_seen(ifindex, name, group);
	pthread_mutex_unlock(&mu);
	return 0;
}

/* Follows link events for good. Events lost (the socket overflowed), or a
 * failing socket (opened again, after a second): every link is checked. */
static void *watch(void *arg)
{
	struct nl *ev = arg;
	int r;

	for (;;) {
		r = ev ? nl_link_events(ev, event_cb, NULL) : -ENOTCONN;
		if (r >= 0 || r == -EINTR)
			continue;
		if (r == -ENOBUFS) {
			log_warnx("firewall: link events lost; checking every interface");
		} else {
			log_warnx("firewall: link events: %s; listening again", strerror(-r));
			nl_close(ev);
			ev = NULL;
			sleep(1);
			if ((r = nl_open_link_events(&ev)) < 0)
				continue;
		}
		fw_groups(true);
	}
	return NULL;
}

int fw_groups_watch(void)
{
	struct nl *ev;
	pthread_t t;
	int r;

	if ((r = nl_open_link_events(&ev)) < 0)
		return r;
	if ((r = pthread_create(&t, NULL, watch, ev)) != 0) {
		nl_close(ev);
		return -r;
	}
	pthread_detach(t);
	return 0;
}
