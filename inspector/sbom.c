/*
 * SBOM writers. Both walk the image document once and build the SBOM with
 * jansson; neither reads anything but the document.
 *
 * License strings come from package metadata and are free text: "MIT",
 * "GPL-2+", "(MIT OR Apache-2.0)", "BSD License". A string counts as an
 * SPDX license expression only when it parses under the grammar of SPDX
 * 2.3 annex D and every identifier in it is on the SPDX license list, so
 * that no SBOM names a license that does not exist.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "inspector/catalog.h"
#include "inspector/sbom.h"

/*
 * SPDX license identifiers, current and deprecated, sorted without regard
 * to case, as Debian 12's node-spdx-license-ids 3.0.12 lists them.
 * NOTE: licenses added to the SPDX list after that package are written as
 * LicenseRef- identifiers or names, not as SPDX identifiers.
 */
static const char *const spdx_license_ids[] = {
    "0BSD",
    "AAL",
    "Abstyles",
    "Adobe-2006",
    "Adobe-Glyph",
    "ADSL",
    "AFL-1.1",
    "AFL-1.2",
    "AFL-2.0",
    "AFL-2.1",
    "AFL-3.0",
    "Afmparse",
    "AGPL-1.0",
    "AGPL-1.0-only",
    "AGPL-1.0-or-later",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Aladdin",
    "AMDPLPA",
    "AML",
    "AMPAS",
    "ANTLR-PD",
    "ANTLR-PD-fallback",
    "Apache-1.0",
    "Apache-1.1",
    "Apache-2.0",
    "APAFML",
    "APL-1.0",
    "App-s2p",
    "APSL-1.0",
    "APSL-1.1",
    "APSL-1.2",
    "APSL-2.0",
    "Arphic-1999",
    "Artistic-1.0",
    "Artistic-1.0-cl8",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "Baekmuk",
    "Bahyph",
    "Barr",
    "Beerware",
    "Bitstream-Vera",
    "BitTorrent-1.0",
    "BitTorrent-1.1",
    "blessing",
    "BlueOak-1.0.0",
    "Borceux",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-FreeBSD",
    "BSD-2-Clause-NetBSD",
    "BSD-2-Clause-Patent",
    "BSD-2-Clause-Views",
    "BSD-3-Clause",
    "BSD-3-Clause-Attribution",
    "BSD-3-Clause-Clear",
    "BSD-3-Clause-LBNL",
    "BSD-3-Clause-Modification",
    "BSD-3-Clause-No-Military-License",
    "BSD-3-Clause-No-Nuclear-License",
    "BSD-3-Clause-No-Nuclear-License-2014",
    "BSD-3-Clause-No-Nuclear-Warranty",
    "BSD-3-Clause-Open-MPI",
    "BSD-4-Clause",
    "BSD-4-Clause-Shortened",
    "BSD-4-Clause-UC",
    "BSD-Protection",
    "BSD-Source-Code",
    "BSL-1.0",
    "BUSL-1.1",
    "bzip2-1.0.5",
    "bzip2-1.0.6",
    "C-UDA-1.0",
    "CAL-1.0",
    "CAL-1.0-Combined-Work-Exception",
    "Caldera",
    "CATOSL-1.1",
    "CC-BY-1.0",
    "CC-BY-2.0",
    "CC-BY-2.5",
    "CC-BY-2.5-AU",
    "CC-BY-3.0",
    "CC-BY-3.0-AT",
    "CC-BY-3.0-DE",
    "CC-BY-3.0-IGO",
    "CC-BY-3.0-NL",
    "CC-BY-3.0-US",
    "CC-BY-4.0",
    "CC-BY-NC-1.0",
    "CC-BY-NC-2.0",
    "CC-BY-NC-2.5",
    "CC-BY-NC-3.0",
    "CC-BY-NC-3.0-DE",
    "CC-BY-NC-4.0",
    "CC-BY-NC-ND-1.0",
    "CC-BY-NC-ND-2.0",
    "CC-BY-NC-ND-2.5",
    "CC-BY-NC-ND-3.0",
    "CC-BY-NC-ND-3.0-DE",
    "CC-BY-NC-ND-3.0-IGO",
    "CC-BY-NC-ND-4.0",
    "CC-BY-NC-SA-1.0",
    "CC-BY-NC-SA-2.0",
    "CC-BY-NC-SA-2.0-FR",
    "CC-BY-NC-SA-2.0-UK",
    "CC-BY-NC-SA-2.5",
    "CC-BY-NC-SA-3.0",
    "CC-BY-NC-SA-3.0-DE",
    "CC-BY-NC-SA-3.0-IGO",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-1.0",
    "CC-BY-ND-2.0",
    "CC-BY-ND-2.5",
    "CC-BY-ND-3.0",
    "CC-BY-ND-3.0-DE",
    "CC-BY-ND-4.0",
    "CC-BY-SA-1.0",
    "CC-BY-SA-2.0",
    "CC-BY-SA-2.0-UK",
    "CC-BY-SA-2.1-JP",
    "CC-BY-SA-2.5",
    "CC-BY-SA-3.0",
    "CC-BY-SA-3.0-AT",
    "CC-BY-SA-3.0-DE",
    "CC-BY-SA-4.0",
    "CC-PDDC",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CDL-1.0",
    "CDLA-Permissive-1.0",
    "CDLA-Permissive-2.0",
    "CDLA-Sharing-1.0",
    "CECILL-1.0",
    "CECILL-1.1",
    "CECILL-2.0",
    "CECILL-2.1",
    "CECILL-B",
    "CECILL-C",
    "CERN-OHL-1.1",
    "CERN-OHL-1.2",
    "CERN-OHL-P-2.0",
    "CERN-OHL-S-2.0",
    "CERN-OHL-W-2.0",
    "ClArtistic",
    "CNRI-Jython",
    "CNRI-Python",
    "CNRI-Python-GPL-Compatible",
    "COIL-1.0",
    "Community-Spec-1.0",
    "Condor-1.1",
    "copyleft-next-0.3.0",
    "copyleft-next-0.3.1",
    "CPAL-1.0",
    "CPL-1.0",
    "CPOL-1.02",
    "Crossword",
    "CrystalStacker",
    "CUA-OPL-1.0",
    "Cube",
    "curl",
    "D-FSL-1.0",
    "diffmark",
    "DL-DE-BY-2.0",
    "DOC",
    "Dotseqn",
    "DRL-1.0",
    "DSDP",
    "dvipdfm",
    "ECL-1.0",
    "ECL-2.0",
    "eCos-2.0",
    "EFL-1.0",
    "EFL-2.0",
    "eGenix",
    "Elastic-2.0",
    "Entessa",
    "EPICS",
    "EPL-1.0",
    "EPL-2.0",
    "ErlPL-1.1",
    "etalab-2.0",
    "EUDatagrid",
    "EUPL-1.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "Eurosym",
    "Fair",
    "FDK-AAC",
    "Frameworx-1.0",
    "FreeBSD-DOC",
    "FreeImage",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GD",
    "GFDL-1.1",
    "GFDL-1.1-invariants-only",
    "GFDL-1.1-invariants-or-later",
    "GFDL-1.1-no-invariants-only",
    "GFDL-1.1-no-invariants-or-later",
    "GFDL-1.1-only",
    "GFDL-1.1-or-later",
    "GFDL-1.2",
    "GFDL-1.2-invariants-only",
    "GFDL-1.2-invariants-or-later",
    "GFDL-1.2-no-invariants-only",
    "GFDL-1.2-no-invariants-or-later",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3",
    "GFDL-1.3-invariants-only",
    "GFDL-1.3-invariants-or-later",
    "GFDL-1.3-no-invariants-only",
    "GFDL-1.3-no-invariants-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "Giftware",
    "GL2PS",
    "Glide",
    "Glulxe",
    "GLWTPL",
    "gnuplot",
    "GPL-1.0",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-2.0-with-autoconf-exception",
    "GPL-2.0-with-bison-exception",
    "GPL-2.0-with-classpath-exception",
    "GPL-2.0-with-font-exception",
    "GPL-2.0-with-GCC-exception",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "GPL-3.0-with-autoconf-exception",
    "GPL-3.0-with-GCC-exception",
    "gSOAP-1.3b",
    "HaskellReport",
    "Hippocratic-2.1",
    "HPND",
    "HPND-sell-variant",
    "HTMLTIDY",
    "IBM-pibs",
    "ICU",
    "IJG",
    "ImageMagick",
    "iMatix",
    "Imlib2",
    "Info-ZIP",
    "Intel",
    "Intel-ACPI",
    "Interbase-1.0",
    "IPA",
    "IPL-1.0",
    "ISC",
    "Jam",
    "JasPer-2.0",
    "JPNIC",
    "JSON",
    "LAL-1.2",
    "LAL-1.3",
    "Latex2e",
    "Leptonica",
    "LGPL-2.0",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "LGPLLR",
    "Libpng",
    "libpng-2.0",
    "libselinux-1.0",
    "libtiff",
    "LiLiQ-P-1.1",
    "LiLiQ-R-1.1",
    "LiLiQ-Rplus-1.1",
    "Linux-man-pages-copyleft",
    "Linux-OpenIB",
    "LPL-1.0",
    "LPL-1.02",
    "LPPL-1.0",
    "LPPL-1.1",
    "LPPL-1.2",
    "LPPL-1.3a",
    "LPPL-1.3c",
    "LZMA-SDK-9.11-to-9.20",
    "LZMA-SDK-9.22",
    "MakeIndex",
    "Minpack",
    "MirOS",
    "MIT",
    "MIT-0",
    "MIT-advertising",
    "MIT-CMU",
    "MIT-enna",
    "MIT-feh",
    "MIT-Modern-Variant",
    "MIT-open-group",
    "MITNFA",
    "Motosoto",
    "mpi-permissive",
    "mpich2",
    "MPL-1.0",
    "MPL-1.1",
    "MPL-2.0",
    "MPL-2.0-no-copyleft-exception",
    "mplus",
    "MS-LPL",
    "MS-PL",
    "MS-RL",
    "MTLL",
    "MulanPSL-1.0",
    "MulanPSL-2.0",
    "Multics",
    "Mup",
    "NAIST-2003",
    "NASA-1.3",
    "Naumen",
    "NBPL-1.0",
    "NCGL-UK-2.0",
    "NCSA",
    "Net-SNMP",
    "NetCDF",
    "Newsletr",
    "NGPL",
    "NICTA-1.0",
    "NIST-PD",
    "NIST-PD-fallback",
    "NLOD-1.0",
    "NLOD-2.0",
    "NLPL",
    "Nokia",
    "NOSL",
    "Noweb",
    "NPL-1.0",
    "NPL-1.1",
    "NPOSL-3.0",
    "NRL",
    "NTP",
    "NTP-0",
    "Nunit",
    "O-UDA-1.0",
    "OCCT-PL",
    "OCLC-2.0",
    "ODbL-1.0",
    "ODC-By-1.0",
    "OFL-1.0",
    "OFL-1.0-no-RFN",
    "OFL-1.0-RFN",
    "OFL-1.1",
    "OFL-1.1-no-RFN",
    "OFL-1.1-RFN",
    "OGC-1.0",
    "OGDL-Taiwan-1.0",
    "OGL-Canada-2.0",
    "OGL-UK-1.0",
    "OGL-UK-2.0",
    "OGL-UK-3.0",
    "OGTSL",
    "OLDAP-1.1",
    "OLDAP-1.2",
    "OLDAP-1.3",
    "OLDAP-1.4",
    "OLDAP-2.0",
    "OLDAP-2.0.1",
    "OLDAP-2.1",
    "OLDAP-2.2",
    "OLDAP-2.2.1",
    "OLDAP-2.2.2",
    "OLDAP-2.3",
    "OLDAP-2.4",
    "OLDAP-2.5",
    "OLDAP-2.6",
    "OLDAP-2.7",
    "OLDAP-2.8",
    "OML",
    "OpenSSL",
    "OPL-1.0",
    "OPUBL-1.0",
    "OSET-PL-2.1",
    "OSL-1.0",
    "OSL-1.1",
    "OSL-2.0",
    "OSL-2.1",
    "OSL-3.0",
    "Parity-6.0.0",
    "Parity-7.0.0",
    "PDDL-1.0",
    "PHP-3.0",
    "PHP-3.01",
    "Plexus",
    "PolyForm-Noncommercial-1.0.0",
    "PolyForm-Small-Business-1.0.0",
    "PostgreSQL",
    "PSF-2.0",
    "psfrag",
    "psutils",
    "Python-2.0",
    "Python-2.0.1",
    "Qhull",
    "QPL-1.0",
    "Rdisc",
    "RHeCos-1.1",
    "RPL-1.1",
    "RPL-1.5",
    "RPSL-1.0",
    "RSA-MD",
    "RSCPL",
    "Ruby",
    "SAX-PD",
    "Saxpath",
    "SCEA",
    "SchemeReport",
    "Sendmail",
    "Sendmail-8.23",
    "SGI-B-1.0",
    "SGI-B-1.1",
    "SGI-B-2.0",
    "SHL-0.5",
    "SHL-0.51",
    "SimPL-2.0",
    "SISSL",
    "SISSL-1.2",
    "Sleepycat",
    "SMLNJ",
    "SMPPL",
    "SNIA",
    "Spencer-86",
    "Spencer-94",
    "Spencer-99",
    "SPL-1.0",
    "SSH-OpenSSH",
    "SSH-short",
    "SSPL-1.0",
    "StandardML-NJ",
    "SugarCRM-1.1.3",
    "SWL",
    "TAPR-OHL-1.0",
    "TCL",
    "TCP-wrappers",
    "TMate",
    "TORQUE-1.1",
    "TOSL",
    "TU-Berlin-1.0",
    "TU-Berlin-2.0",
    "UCL-1.0",
    "Unicode-DFS-2015",
    "Unicode-DFS-2016",
    "Unicode-TOU",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "VOSTROM",
    "VSL-1.0",
    "W3C",
    "W3C-19980720",
    "W3C-20150513",
    "Watcom-1.0",
    "Wsuipa",
    "WTFPL",
    "wxWindows",
    "X11",
    "X11-distribute-modifications-variant",
    "Xerox",
    "XFree86-1.1",
    "xinetd",
    "Xnet",
    "xpp",
    "XSkat",
    "YPL-1.0",
    "YPL-1.1",
    "Zed",
    "Zend-2.0",
    "Zimbra-1.3",
    "Zimbra-1.4",
    "Zlib",
    "zlib-acknowledgement",
    "ZPL-1.1",
    "ZPL-2.0",
    "ZPL-2.1",
};

/* SPDX license exception identifiers, sorted without regard to case, as
 * Debian 12's node-spdx-exceptions 2.3.0 lists them. */
static const char *const spdx_exception_ids[] = {
    "389-exception",
    "Autoconf-exception-2.0",
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Bootloader-exception",
    "Classpath-exception-2.0",
    "CLISP-exception-2.0",
    "DigiRule-FOSS-exception",
    "eCos-exception-2.0",
    "Fawkes-Runtime-exception",
    "FLTK-exception",
    "Font-exception-2.0",
    "freertos-exception-2.0",
    "GCC-exception-2.0",
    "GCC-exception-3.1",
    "gnu-javamail-exception",
    "GPL-3.0-linking-exception",
    "GPL-3.0-linking-source-exception",
    "GPL-CC-1.0",
    "i2p-gpl-java-exception",
    "Libtool-exception",
    "Linux-syscall-note",
    "LLVM-exception",
    "LZMA-exception",
    "mif-exception",
    "Nokia-Qt-exception-1.1",
    "OCaml-LGPL-linking-exception",
    "OCCT-exception-1.0",
    "OpenJDK-assembly-exception-1.0",
    "openvpn-openssl-exception",
    "PS-or-PDF-font-exception-20170817",
    "Qt-GPL-exception-1.0",
    "Qt-LGPL-exception-1.1",
    "Qwt-exception-1.0",
    "Swift-exception",
    "u-boot-exception-2.0",
    "Universal-FOSS-exception-1.0",
    "WxWindows-exception-3.1",
};

#define ARRAY_LENGTH(array) (sizeof(array) / sizeof((array)[0]))

/* Nesting of parentheses in one license expression. */
#define LICENSE_EXPRESSION_DEPTH_MAX 16

/* Bytes of a LicenseRef- identifier's name part made from free text. */
#define LICENSE_REF_NAME_MAX 64

/* "2024-01-31T12:00:00Z" and its terminator. */
#define TIMESTAMP_SIZE 21

/* ---- SPDX license expressions ---- */

/* A license expression being parsed, and its normalized form. */
struct expression {
    const char *cursor;
    char out[SBOM_LICENSE_EXPRESSION_MAX + 1];
    size_t used;
    unsigned depth;
    bool compound; /* has AND, OR or WITH */
    bool failed;
};

/*
 * Returns the entry of table, sorted without regard to case, that equals
 * the len bytes at word without regard to case, or NULL. SPDX identifiers
 * match without regard to case (SPDX 2.3 annex D).
 */
static const char *
find_identifier(const char *const *table, size_t n, const char *word,
                size_t len)
{
    size_t low = 0, high = n;

    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int order = strncasecmp(word, table[mid], len);

        if (order == 0 && table[mid][len] != '\0')
            order = -1;
        if (order == 0)
            return table[mid];
        if (order < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return NULL;
}

static const char *
find_license(const char *word, size_t len)
{
    return find_identifier(spdx_license_ids, ARRAY_LENGTH(spdx_license_ids),
                           word, len);
}

static void
expression_emit(struct expression *e, const char *text, size_t len)
{
    if (e->failed || len > SBOM_LICENSE_EXPRESSION_MAX - e->used) {
        e->failed = true;
        return;
    }
    memcpy(e->out + e->used, text, len);
    e->used += len;
    e->out[e->used] = '\0';
}

/* Sets *token to the next token and returns its length, 0 at the end. A
 * token is "(", ")" or a run of other characters up to a space. */
static size_t
expression_peek(const struct expression *e, const char **token)
{
    const char *p = e->cursor;
    size_t len = 0;

    while (*p == ' ' || *p == '\t')
        p++;
    *token = p;
    if (*p == '(' || *p == ')')
        return 1;
    while (p[len] != '\0' && strchr(" \t()", p[len]) == NULL)
        len++;
    return len;
}

static bool
token_is(const char *token, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(token, word, len) == 0;
}

static bool
token_is_operator(const char *token, size_t len)
{
    return token_is(token, len, "AND") || token_is(token, len, "OR") ||
           token_is(token, len, "WITH");
}

static void parse_or(struct expression *e);

/* license-id ["+"] or "(" expression ")". LicenseRef- identifiers are not
 * accepted, because the SBOM would have to declare their text. */
static void
parse_license(struct expression *e)
{
    const char *token, *id;
    size_t len = expression_peek(e, &token);
    size_t plus;

    if (len == 1 && token[0] == '(') {
        e->cursor = token + 1;
        if (++e->depth > LICENSE_EXPRESSION_DEPTH_MAX)
            e->failed = true;
        expression_emit(e, "(", 1);
        parse_or(e);
        len = expression_peek(e, &token);
        if (len != 1 || token[0] != ')')
            e->failed = true;
        e->cursor = token + len;
        expression_emit(e, ")", 1);
        e->depth--;
        return;
    }
    if (len == 0 || token[0] == ')' || token_is_operator(token, len)) {
        e->failed = true;
        return;
    }
    plus = token[len - 1] == '+' ? 1 : 0;
    id = find_license(token, len - plus);
    if (id == NULL) {
        e->failed = true;
        return;
    }
    e->cursor = token + len;
    expression_emit(e, id, strlen(id));
    expression_emit(e, "+", plus);
}

static void
parse_with(struct expression *e)
{
    const char *token, *id;
    size_t len;

    parse_license(e);
    len = expression_peek(e, &token);
    if (e->failed || !token_is(token, len, "WITH"))
        return;
    e->cursor = token + len;
    len = expression_peek(e, &token);
    id = find_identifier(spdx_exception_ids, ARRAY_LENGTH(spdx_exception_ids),
                         token, len);
    if (len == 0 || id == NULL) {
        e->failed = true;
        return;
    }
    e->cursor = token + len;
    e->compound = true;
    expression_emit(e, " WITH ", 6);
    expression_emit(e, id, strlen(id));
}

static void
parse_and(struct expression *e)
{
    const char *token;
    size_t len;

    parse_with(e);
    while (!e->failed) {
        len = expression_peek(e, &token);
        if (!token_is(token, len, "AND"))
            return;
        e->cursor = token + len;
        e->compound = true;
        expression_emit(e, " AND ", 5);
        parse_with(e);
    }
}

static void
parse_or(struct expression *e)
{
    const char *token;
    size_t len;

    parse_and(e);
    while (!e->failed) {
        len = expression_peek(e, &token);
        if (!token_is(token, len, "OR"))
            return;
        e->cursor = token + len;
        e->compound = true;
        expression_emit(e, " OR ", 4);
        parse_and(e);
    }
}

/*
 * Parses text as an SPDX license expression of listed identifiers. Returns
 * true with e->out holding it with identifiers in their listed case,
 * operators in upper case and single spaces, or false.
 */
static bool
license_expression_parse(const char *text, struct expression *e)
{
    const char *token;

    memset(e, 0, sizeof(*e));
    e->cursor = text;
    if (strlen(text) > SBOM_LICENSE_EXPRESSION_MAX)
        return false;
    parse_or(e);
    return !e->failed && expression_peek(e, &token) == 0;
}

/*
 * Appends part to joined, an expression being built, after " AND " and in
 * parentheses when it is compound. seen holds the parts already joined,
 * and a part already there is not added again. Returns 0, or -1 when the
 * result would not fit in size bytes or memory is short.
 */
static int
expression_join(char *joined, size_t size, json_t *seen, const char *part,
                bool compound)
{
    size_t used = strlen(joined);
    int n;

    if (json_object_get(seen, part) != NULL)
        return 0;
    n = snprintf(joined + used, size - used, "%s%s%s%s",
                 used > 0 ? " AND " : "", compound ? "(" : "", part,
                 compound ? ")" : "");
    if (n < 0 || (size_t)n >= size - used) {
        joined[used] = '\0';
        return -1;
    }
    return json_object_set_new(seen, part, json_true());
}

/* ---- reading the document ---- */

/* Returns member key of object when it is a non-empty string, else "". */
static const char *
member_text(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));

    return value != NULL ? value : "";
}

/* Returns the package's license strings as an array, or NULL. A single
 * string member is read as a list of one. */
static json_t *
package_licenses(const json_t *package)
{
    json_t *licenses = json_object_get(package, "licenses");
    json_t *list = json_array();
    size_t i;
    json_t *item;

    if (list == NULL)
        return NULL;
    if (json_is_string(licenses))
        json_array_append(list, licenses);
    json_array_foreach(licenses, i, item)
    {
        if (json_array_size(list) >= SBOM_PACKAGE_LICENSES_MAX)
            break;
        if (json_is_string(item) && json_string_length(item) > 0)
            json_array_append(list, item);
    }
    return list;
}

/* Returns the manifest digest of document, or "". */
static const char *
document_digest(const json_t *document)
{
    return member_text(json_object_get(document, "manifest"), "digest");
}

/*
 * Returns the image's name as a reference: "registry/repository:tag",
 * "registry/repository@digest", the repository alone when the registry
 * is "", else the reference or the manifest digest. A new string.
 */
static json_t *
image_name(const json_t *document)
{
    const json_t *source = json_object_get(document, "source");
    const char *registry = member_text(source, "registry");
    const char *repository = member_text(source, "repository");
    const char *reference = member_text(source, "reference");
    const char *digest = document_digest(document);
    const char *separator = strchr(reference, ':') != NULL ? "@" : ":";

    if (repository[0] == '\0' && reference[0] != '\0')
        return json_string(reference);
    if (repository[0] == '\0')
        return json_string(digest[0] != '\0' ? digest : "image");
    return json_sprintf("%s%s%s%s%s", registry, registry[0] ? "/" : "",
                        repository, reference[0] ? separator : "", reference);
}

/*
 * Returns the image's package URL, pkg:oci/NAME@DIGEST with the
 * repository_url, tag and arch qualifiers, or NULL when the image has no
 * registry, repository or digest (an image read from a local file).
 */
static json_t *
image_purl(const json_t *document)
{
    const json_t *source = json_object_get(document, "source");
    const char *registry = member_text(source, "registry");
    const char *repository = member_text(source, "repository");
    const char *reference = member_text(source, "reference");
    const char *digest = document_digest(document);
    const char *slash = strrchr(repository, '/');
    const char *arch =
        member_text(json_object_get(document, "platform"), "architecture");
    json_t *url, *purl;

    if (registry[0] == '\0' || repository[0] == '\0' || digest[0] == '\0')
        return NULL;
    url = json_sprintf("%s/%s", registry, repository);
    if (url == NULL)
        return NULL;
    const char *qualifiers[] = {
        "arch",
        arch,
        "repository_url",
        json_string_value(url),
        "tag",
        strchr(reference, ':') != NULL ? "" : reference,
        NULL,
    };
    purl = catalog_purl("oci", NULL, slash != NULL ? slash + 1 : repository,
                        digest, qualifiers);
    json_decref(url);
    return purl;
}

/* Sets *packages to the document's packages array (NULL when it has
 * none). Fails when it has more than SBOM_PACKAGES_MAX. */
static int
document_packages(const json_t *document, const json_t **packages,
                  struct pg_error **err)
{
    *packages = json_object_get(document, "packages");
    if (json_array_size(*packages) > SBOM_PACKAGES_MAX) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "image %s has %zu packages, more than the %d an SBOM "
                     "holds",
                     document_digest(document), json_array_size(*packages),
                     SBOM_PACKAGES_MAX);
        return -1;
    }
    return 0;
}

/* Writes now as RFC 3339 UTC, "2024-01-31T12:00:00Z", into out. */
static void
format_timestamp(time_t now, char out[TIMESTAMP_SIZE])
{
    struct tm utc;

    if (gmtime_r(&now, &utc) == NULL ||
        strftime(out, TIMESTAMP_SIZE, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0)
        snprintf(out, TIMESTAMP_SIZE, "1970-01-01T00:00:00Z");
}

static void
set_memory_error(struct pg_error **err, const json_t *document)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while writing the SBOM of image %s",
                 document_digest(document));
}

/* ---- SPDX 2.3 ---- */

#define SPDX_IMAGE_ID "SPDXRef-Image"
#define SPDX_OS_ID "SPDXRef-OperatingSystem"

/* The parts of an SPDX document built while walking the packages. */
struct spdx_writer {
    json_t *packages;
    json_t *relationships;
    json_t *extracted;    /* hasExtractedLicensingInfos */
    json_t *license_refs; /* license text -> LicenseRef- identifier */
    json_t *ref_ids;      /* LicenseRef- identifiers in use */
};

static void
spdx_writer_clear(struct spdx_writer *w)
{
    json_decref(w->packages);
    json_decref(w->relationships);
    json_decref(w->extracted);
    json_decref(w->license_refs);
    json_decref(w->ref_ids);
}

/* Writes "LicenseRef-" and text with every byte outside [A-Za-z0-9.-]
 * replaced by '-', cut to LICENSE_REF_NAME_MAX bytes, into out. */
static void
license_ref_base(const char *text, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "LicenseRef-");

    for (size_t i = 0;
         text[i] != '\0' && i < LICENSE_REF_NAME_MAX && used + 1 < size; i++) {
        char c = text[i];
        bool kept = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '-';

        out[used++] = kept ? c : '-';
    }
    out[used] = '\0';
}

/*
 * Returns the LicenseRef- identifier for a license string that is not an
 * SPDX expression, declaring it in hasExtractedLicensingInfos the first
 * time. Identifiers made from different strings that read the same get a
 * number. The string belongs to the writer; NULL when memory is short.
 */
static const char *
spdx_license_ref(struct spdx_writer *w, const char *text)
{
    char base[sizeof("LicenseRef-") + LICENSE_REF_NAME_MAX];
    char id[sizeof(base) + 24];
    json_t *info;

    if (json_object_get(w->license_refs, text) != NULL)
        return json_string_value(json_object_get(w->license_refs, text));

    license_ref_base(text, base, sizeof(base));
    snprintf(id, sizeof(id), "%s", base);
    for (size_t n = json_object_size(w->ref_ids) + 1;
         json_object_get(w->ref_ids, id) != NULL; n++)
        snprintf(id, sizeof(id), "%s-%zu", base, n);

    info = json_pack("{s:s, s:s, s:s, s:s}", "licenseId", id, "name", text,
                     "extractedText", text, "comment",
                     "The license as the package metadata names it; "
                     "pullgate did not read the license text.");
    if (info == NULL || json_array_append_new(w->extracted, info) < 0 ||
        json_object_set_new(w->ref_ids, id, json_true()) < 0 ||
        json_object_set_new(w->license_refs, text, json_string(id)) < 0)
        return NULL;
    return json_string_value(json_object_get(w->license_refs, text));
}

/*
 * Returns the licenseDeclared value of a package: its license strings
 * joined with AND, each an SPDX expression or a LicenseRef- identifier,
 * or "NOASSERTION" when it has none or they do not fit in
 * SBOM_LICENSE_EXPRESSION_MAX bytes. NULL when memory is short.
 */
static json_t *
spdx_license_declared(struct spdx_writer *w, const json_t *package)
{
    char joined[SBOM_LICENSE_EXPRESSION_MAX + 1] = "";
    json_t *licenses = package_licenses(package);
    json_t *seen = json_object();
    bool several = json_array_size(licenses) > 1;
    json_t *result = NULL;
    struct expression e;
    size_t i;
    json_t *item;

    if (licenses == NULL || seen == NULL)
        goto out;
    json_array_foreach(licenses, i, item)
    {
        const char *text = json_string_value(item);
        const char *part = e.out;
        bool compound = false;

        if (license_expression_parse(text, &e))
            compound = e.compound && several;
        else
            part = spdx_license_ref(w, text);
        if (part == NULL)
            goto out;
        if (expression_join(joined, sizeof(joined), seen, part, compound) < 0) {
            joined[0] = '\0';
            break;
        }
    }
    result = json_string(joined[0] != '\0' ? joined : "NOASSERTION");
out:
    json_decref(seen);
    json_decref(licenses);
    return result;
}

static json_t *
spdx_purl_refs(json_t *purl)
{
    if (purl == NULL)
        return NULL;
    return json_pack("[{s:s, s:s, s:o}]", "referenceCategory",
                     "PACKAGE-MANAGER", "referenceType", "purl",
                     "referenceLocator", purl);
}

static int
spdx_relate(struct spdx_writer *w, const char *from, const char *type,
            const char *to)
{
    return json_array_append_new(w->relationships,
                                 json_pack("{s:s, s:s, s:s}", "spdxElementId",
                                           from, "relationshipType", type,
                                           "relatedSpdxElement", to));
}

/* Adds the package of the image itself, which the document describes. */
static int
spdx_add_image(struct spdx_writer *w, const json_t *document)
{
    const char *digest = document_digest(document);
    json_t *package;

    package = json_pack("{s:s, s:o, s:s*, s:s, s:s, s:b, s:s, s:s, s:s, s:o*}",
                        "SPDXID", SPDX_IMAGE_ID, "name", image_name(document),
                        "versionInfo", digest[0] != '\0' ? digest : NULL,
                        "primaryPackagePurpose", "CONTAINER",
                        "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                        "licenseConcluded", "NOASSERTION", "licenseDeclared",
                        "NOASSERTION", "copyrightText", "NOASSERTION",
                        "externalRefs", spdx_purl_refs(image_purl(document)));
    if (package == NULL || json_array_append_new(w->packages, package) < 0)
        return -1;
    return spdx_relate(w, "SPDXRef-DOCUMENT", "DESCRIBES", SPDX_IMAGE_ID);
}

/* Adds the operating system from the document's "os", when it has one. */
static int
spdx_add_os(struct spdx_writer *w, const json_t *document)
{
    const json_t *os = json_object_get(document, "os");
    const char *name = member_text(os, "id");
    const char *version = member_text(os, "version_id");
    const char *pretty = member_text(os, "pretty_name");
    json_t *package;

    if (name[0] == '\0')
        name = member_text(os, "name");
    if (name[0] == '\0')
        return 0;
    package = json_pack("{s:s, s:s, s:s*, s:s*, s:s, s:s, s:b, s:s, s:s, s:s}",
                        "SPDXID", SPDX_OS_ID, "name", name, "versionInfo",
                        version[0] != '\0' ? version : NULL, "description",
                        pretty[0] != '\0' ? pretty : NULL,
                        "primaryPackagePurpose", "OPERATING-SYSTEM",
                        "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                        "licenseConcluded", "NOASSERTION", "licenseDeclared",
                        "NOASSERTION", "copyrightText", "NOASSERTION");
    if (package == NULL || json_array_append_new(w->packages, package) < 0)
        return -1;
    return spdx_relate(w, SPDX_IMAGE_ID, "CONTAINS", SPDX_OS_ID);
}

/* Returns "found at /PATH in layer N" for a package, or NULL. */
static json_t *
package_location(const json_t *package)
{
    const char *path = member_text(package, "path");
    json_t *layer = json_object_get(package, "layer");

    if (path[0] == '\0')
        return NULL;
    if (json_is_integer(layer))
        return json_sprintf("found at /%s in layer %" JSON_INTEGER_FORMAT, path,
                            json_integer_value(layer));
    return json_sprintf("found at /%s", path);
}

/* Returns "built from source package NAME VERSION", or NULL. */
static json_t *
package_source_info(const json_t *package)
{
    const char *name = member_text(package, "source_name");
    const char *version = member_text(package, "source_version");

    if (name[0] == '\0')
        return NULL;
    return json_sprintf("built from source package %s%s%s", name,
                        version[0] != '\0' ? " " : "", version);
}

/* Adds package number n (from 1) as SPDXRef-Package-n. Packages without
 * a name are skipped, because SPDX requires one. */
static int
spdx_add_package(struct spdx_writer *w, const json_t *package, size_t n)
{
    const char *name = member_text(package, "name");
    const char *version = member_text(package, "version");
    json_t *purl = json_object_get(package, "purl");
    char id[48];
    json_t *item;

    if (name[0] == '\0')
        return 0;
    snprintf(id, sizeof(id), "SPDXRef-Package-%zu", n);
    item = json_pack(
        "{s:s, s:s, s:s*, s:s, s:b, s:s, s:o, s:s, s:o*, s:o*, s:o*}", "SPDXID",
        id, "name", name, "versionInfo", version[0] != '\0' ? version : NULL,
        "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
        "licenseConcluded", "NOASSERTION", "licenseDeclared",
        spdx_license_declared(w, package), "copyrightText", "NOASSERTION",
        "sourceInfo", package_source_info(package), "comment",
        package_location(package), "externalRefs",
        json_is_string(purl) ? spdx_purl_refs(json_copy(purl)) : NULL);
    if (item == NULL || json_array_append_new(w->packages, item) < 0)
        return -1;
    return spdx_relate(w, SPDX_IMAGE_ID, "CONTAINS", id);
}

/* Returns the documentNamespace: the prefix, the digest as
 * ALGORITHM/HEX, and the pullgate version. */
static json_t *
spdx_namespace(const json_t *document)
{
    const char *digest = document_digest(document);
    const char *colon = strchr(digest, ':');

    if (colon == NULL)
        return json_sprintf("%sunknown-digest/pullgate-%s",
                            SBOM_SPDX_NAMESPACE_PREFIX, PACKAGE_VERSION);
    return json_sprintf("%s%.*s/%s/pullgate-%s", SBOM_SPDX_NAMESPACE_PREFIX,
                        (int)(colon - digest), digest, colon + 1,
                        PACKAGE_VERSION);
}

static int
spdx_add_all(struct spdx_writer *w, const json_t *document,
             const json_t *packages)
{
    size_t i;
    json_t *package;

    if (spdx_add_image(w, document) < 0 || spdx_add_os(w, document) < 0)
        return -1;
    json_array_foreach(packages, i, package)
    {
        if (json_is_object(package) && spdx_add_package(w, package, i + 1) < 0)
            return -1;
    }
    return 0;
}

/* Builds the SPDX document with creationInfo.created set to now. */
static json_t *
spdx_build(const json_t *document, time_t now, struct pg_error **err)
{
    struct spdx_writer w = {
        .packages = json_array(),
        .relationships = json_array(),
        .extracted = json_array(),
        .license_refs = json_object(),
        .ref_ids = json_object(),
    };
    char created[TIMESTAMP_SIZE];
    const json_t *packages;
    json_t *spdx = NULL;

    if (document_packages(document, &packages, err) < 0)
        goto out;
    format_timestamp(now, created);
    if (w.packages == NULL || w.relationships == NULL || w.extracted == NULL ||
        w.license_refs == NULL || w.ref_ids == NULL ||
        spdx_add_all(&w, document, packages) < 0)
        goto fail;

    spdx = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:{s:s, s:[s+]}, s:O, s:O, s:O*}",
        "spdxVersion", "SPDX-2.3", "dataLicense", "CC0-1.0", "SPDXID",
        "SPDXRef-DOCUMENT", "name", image_name(document), "documentNamespace",
        spdx_namespace(document), "creationInfo", "created", created,
        "creators", "Tool: pullgate-", PACKAGE_VERSION, "packages", w.packages,
        "relationships", w.relationships, "hasExtractedLicensingInfos",
        json_array_size(w.extracted) > 0 ? w.extracted : NULL);
    if (spdx != NULL)
        goto out;
fail:
    set_memory_error(err, document);
out:
    spdx_writer_clear(&w);
    return spdx;
}

json_t *
inspector_sbom_spdx(const json_t *document, struct pg_error **err)
{
    return spdx_build(document, time(NULL), err);
}

/* ---- CycloneDX 1.5 ---- */

#define CYCLONEDX_IMAGE_REF "image"
#define CYCLONEDX_OS_REF "os"

/*
 * Returns [{"expression": E}] when every license string is an SPDX
 * expression and one of them is more than a single listed identifier,
 * because CycloneDX 1.5 allows an expression only as the one item of
 * "licenses". Returns NULL otherwise, and when memory is short.
 */
static json_t *
cyclonedx_expression(const json_t *licenses)
{
    char joined[SBOM_LICENSE_EXPRESSION_MAX + 1] = "";
    bool several = json_array_size(licenses) > 1;
    bool plain = true;
    json_t *seen = json_object();
    json_t *result = NULL;
    struct expression e;
    size_t i;
    json_t *item;

    if (seen == NULL)
        return NULL;
    json_array_foreach(licenses, i, item)
    {
        const char *text = json_string_value(item);

        if (!license_expression_parse(text, &e) ||
            expression_join(joined, sizeof(joined), seen, e.out,
                            e.compound && several) < 0)
            goto out;
        if (find_license(text, strlen(text)) == NULL)
            plain = false;
    }
    if (!plain && joined[0] != '\0')
        result = json_pack("[{s:s}]", "expression", joined);
out:
    json_decref(seen);
    return result;
}

/*
 * Returns the "licenses" of a package: one {"expression"} (see above),
 * else {"license": {"id"}} for each string that is one listed SPDX
 * identifier and {"license": {"name"}} for each other one. NULL when the
 * package has none or memory is short.
 */
static json_t *
cyclonedx_licenses(const json_t *package)
{
    json_t *licenses = package_licenses(package);
    json_t *result = NULL;
    size_t i;
    json_t *item;

    if (json_array_size(licenses) == 0)
        goto out;
    result = cyclonedx_expression(licenses);
    if (result != NULL)
        goto out;
    result = json_array();
    json_array_foreach(licenses, i, item)
    {
        const char *text = json_string_value(item);
        const char *id = find_license(text, strlen(text));
        json_t *license = id != NULL
                              ? json_pack("{s:{s:s}}", "license", "id", id)
                              : json_pack("{s:{s:s}}", "license", "name", text);

        if (json_array_append_new(result, license) < 0) {
            json_decref(result);
            result = NULL;
            break;
        }
    }
out:
    json_decref(licenses);
    return result;
}

/* Returns the properties of a package: where it was found and the source
 * package it was built from. NULL when it has none. */
static json_t *
cyclonedx_properties(const json_t *package)
{
    static const char *const keys[] = {"path", "layer", "source_name",
                                       "source_version", "arch"};
    json_t *properties = json_array();

    for (size_t i = 0; properties != NULL && i < ARRAY_LENGTH(keys); i++) {
        json_t *value = json_object_get(package, keys[i]);
        json_t *text = json_is_integer(value)
                           ? json_sprintf("%" JSON_INTEGER_FORMAT,
                                          json_integer_value(value))
                           : json_copy(value);

        if (!json_is_string(text)) {
            json_decref(text);
            continue;
        }
        json_array_append_new(properties,
                              json_pack("{s:s+, s:o}", "name",
                                        "pullgate:", keys[i], "value", text));
    }
    if (json_array_size(properties) == 0) {
        json_decref(properties);
        return NULL;
    }
    return properties;
}

/* Returns the component of package number n (from 1), or NULL with
 * *skipped set for a package without a name. */
static json_t *
cyclonedx_component(const json_t *package, size_t n, bool *skipped)
{
    const char *name = member_text(package, "name");
    const char *version = member_text(package, "version");
    json_t *purl = json_object_get(package, "purl");
    char ref[48];

    *skipped = name[0] == '\0';
    if (*skipped)
        return NULL;
    snprintf(ref, sizeof(ref), "package-%zu", n);
    return json_pack("{s:s, s:s, s:s, s:s*, s:O*, s:o*, s:o*}", "type",
                     "library", "bom-ref", ref, "name", name, "version",
                     version[0] != '\0' ? version : NULL, "purl",
                     json_is_string(purl) ? purl : NULL, "licenses",
                     cyclonedx_licenses(package), "properties",
                     cyclonedx_properties(package));
}

/* Appends the operating system component when the document has "os". */
static int
cyclonedx_add_os(json_t *components, const json_t *document)
{
    const json_t *os = json_object_get(document, "os");
    const char *name = member_text(os, "id");
    const char *version = member_text(os, "version_id");
    const char *pretty = member_text(os, "pretty_name");

    if (name[0] == '\0')
        name = member_text(os, "name");
    if (name[0] == '\0')
        return 0;
    return json_array_append_new(
        components,
        json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "type", "operating-system",
                  "bom-ref", CYCLONEDX_OS_REF, "name", name, "version",
                  version[0] != '\0' ? version : NULL, "description",
                  pretty[0] != '\0' ? pretty : NULL));
}

static json_t *
cyclonedx_components(const json_t *document, const json_t *packages)
{
    json_t *components = json_array();
    size_t i;
    json_t *package;

    if (components == NULL || cyclonedx_add_os(components, document) < 0)
        goto fail;
    json_array_foreach(packages, i, package)
    {
        bool skipped = true;
        json_t *component = json_is_object(package)
                                ? cyclonedx_component(package, i + 1, &skipped)
                                : NULL;

        if (!skipped && json_array_append_new(components, component) < 0)
            goto fail;
    }
    return components;
fail:
    json_decref(components);
    return NULL;
}

/* Writes a random version 4 UUID URN (RFC 4122) into out. */
static int
random_uuid_urn(char *out, size_t size)
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, size,
             "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

static json_t *
cyclonedx_image(const json_t *document)
{
    const char *digest = document_digest(document);

    return json_pack(
        "{s:s, s:s, s:o, s:s*, s:o*}", "type", "container", "bom-ref",
        CYCLONEDX_IMAGE_REF, "name", image_name(document), "version",
        digest[0] != '\0' ? digest : NULL, "purl", image_purl(document));
}

/* Builds the BOM with metadata.timestamp set to now. */
static json_t *
cyclonedx_build(const json_t *document, time_t now, struct pg_error **err)
{
    char timestamp[TIMESTAMP_SIZE];
    char serial[sizeof("urn:uuid:") + 36];
    const json_t *packages;
    json_t *bom;

    if (document_packages(document, &packages, err) < 0)
        return NULL;
    if (random_uuid_urn(serial, sizeof(serial)) < 0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "cannot draw random bytes for the serial number of the "
                     "SBOM of image %s",
                     document_digest(document));
        return NULL;
    }
    format_timestamp(now, timestamp);
    bom = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:{s:[{s:s, s:s, s:s}]}, "
                    "s:o}, s:o}",
                    "bomFormat", "CycloneDX", "specVersion", "1.5",
                    "serialNumber", serial, "version", 1, "metadata",
                    "timestamp", timestamp, "tools", "components", "type",
                    "application", "name", "pullgate", "version",
                    PACKAGE_VERSION, "component", cyclonedx_image(document),
                    "components", cyclonedx_components(document, packages));
    if (bom == NULL)
        set_memory_error(err, document);
    return bom;
}

json_t *
inspector_sbom_cyclonedx(const json_t *document, struct pg_error **err)
{
    return cyclonedx_build(document, time(NULL), err);
}
