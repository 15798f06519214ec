/*
 * HTTP dates as Go's net/http reads and writes them: http.ParseTime (three
 * layouts, zone abbreviations taken as UTC) and http.TimeFormat.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
static const char *const wdays_long[] = {"Sunday",    "Monday",   "Tuesday",
                                         "Wednesday", "Thursday", "Friday",
                                         "Saturday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Matches one of names[0..n) case-insensitively at *pp. */
static bool take_name(const char **pp, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(*pp, names[i], len) == 0) {
            *pp += len;
            return true;
        }
    }
    return false;
}

static bool take_month(const char **pp, int *mon)
{
    for (int i = 0; i < 12; i++) {
        if (strncasecmp(*pp, months[i], 3) == 0) {
            *pp += 3;
            *mon = i;
            return true;
        }
    }
    return false;
}

/* Exactly `width` digits. */
static bool take_num(const char **pp, int width, int *out)
{
    int n = 0;

    for (int i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*pp)[i])) {
            return false;
        }
        n = n * 10 + (*pp)[i] - '0';
    }
    *pp += width;
    *out = n;
    return true;
}

static bool take_lit(const char **pp, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*pp, lit, n) != 0) {
        return false;
    }
    *pp += n;
    return true;
}

static bool take_clock(const char **pp, struct tm *tm)
{
    return take_num(pp, 2, &tm->tm_hour) && take_lit(pp, ":") &&
           take_num(pp, 2, &tm->tm_min) && take_lit(pp, ":") &&
           take_num(pp, 2, &tm->tm_sec);
}

/* "Mon, 02 Jan 2006 15:04:05 GMT" */
static bool parse_imf(const char *p, struct tm *tm)
{
    return take_name(&p, wdays, 7) && take_lit(&p, ", ") &&
           take_num(&p, 2, &tm->tm_mday) && take_lit(&p, " ") &&
           take_month(&p, &tm->tm_mon) && take_lit(&p, " ") &&
           take_num(&p, 4, &tm->tm_year) && take_lit(&p, " ") &&
           take_clock(&p, tm) && take_lit(&p, " GMT") && *p == '\0';
}

/* "Monday, 02-Jan-06 15:04:05 MST": any zone abbreviation, which Go
 * records with a zero offset. */
static bool parse_rfc850(const char *p, struct tm *tm)
{
    const char *z;

    if (!(take_name(&p, wdays_long, 7) && take_lit(&p, ", ") &&
          take_num(&p, 2, &tm->tm_mday) && take_lit(&p, "-") &&
          take_month(&p, &tm->tm_mon) && take_lit(&p, "-") &&
          take_num(&p, 2, &tm->tm_year) && take_lit(&p, " ") &&
          take_clock(&p, tm) && take_lit(&p, " "))) {
        return false;
    }
    tm->tm_year += tm->tm_year >= 69 ? 1900 : 2000;
    for (z = p; isupper((unsigned char)*z); z++) {
    }
    return z - p >= 3 && *z == '\0';
}

/* "Mon Jan _2 15:04:05 2006" */
static bool parse_asctime(const char *p, struct tm *tm)
{
    if (!(take_name(&p, wdays, 7) && take_lit(&p, " ") &&
          take_month(&p, &tm->tm_mon) && take_lit(&p, " "))) {
        return false;
    }
    if (*p == ' ') {
        p++;
        if (!take_num(&p, 1, &tm->tm_mday)) {
            return false;
        }
    } else if (!take_num(&p, 2, &tm->tm_mday) &&
               !take_num(&p, 1, &tm->tm_mday)) {
        return false;
    }
    return take_lit(&p, " ") && take_clock(&p, tm) && take_lit(&p, " ") &&
           take_num(&p, 4, &tm->tm_year) && *p == '\0';
}

static bool valid_tm(const struct tm *tm)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm->tm_year;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (tm->tm_mday < 1 || tm->tm_mday > mdays[tm->tm_mon] ||
        (tm->tm_mon == 1 && tm->tm_mday == 29 && !leap)) {
        return false;
    }
    return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 60;
}

bool http_parse_time(const char *value, time_t *out)
{
    struct tm tm;

    if (value == NULL) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    if (!parse_imf(value, &tm)) {
        memset(&tm, 0, sizeof(tm));
        if (!parse_rfc850(value, &tm)) {
            memset(&tm, 0, sizeof(tm));
            if (!parse_asctime(value, &tm)) {
                return false;
            }
        }
    }
    if (!valid_tm(&tm)) {
        return false;
    }
    tm.tm_year -= 1900;
    *out = timegm(&tm);
    return true;
}

void http_format_time(time_t t, char buf[40])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}
