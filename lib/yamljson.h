/* SPDX-License-Identifier: MIT */
#ifndef LARCH_YAMLJSON_H
#define LARCH_YAMLJSON_H

/*
 * DOC: YAML (and JSON) documents to jansson values
 *
 * Config files and `larchctl apply` manifests are YAML; JSON is YAML too, so
 * one loader reads both. The result is a new JSON array with one element per
 * document of the stream (`---` separated). Plain scalars are typed as in
 * YAML 1.2's core schema (null ~ true false, integers incl. 0x/0o, floats);
 * quoted scalars are always strings. Anchors and aliases are resolved, with
 * the total node count bounded (no "billion laughs"). Duplicate and
 * non-scalar mapping keys are errors. Errors name file:line:column.
 */
#include <stddef.h>
#include <jansson.h>

struct error;

/* Read a file ("-" is stdin). Returns a new array, or NULL and err filled. */
json_t *yamljson_load_file(const char *path, struct error *err);
/* Parse buf[0..len); name is used in error messages. */
json_t *yamljson_load_string(const char *buf, size_t len, const char *name, struct error *err);

#endif
