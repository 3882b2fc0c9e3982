// A light SRT load generator: plays one MPEG-TS file to many SRT connections at once, paced in
// real time (or faster), from one thread. One FFmpeg per caller costs more CPU than the gateway
// it measures; this sends the file's bytes as they are, 1316 bytes (7 TS packets) per message.
//
//   srt-sender -p PORT -f FILE -d SECONDS_OF_MEDIA_IN_FILE [-h HOST] [-n STREAMS] [-s STREAMID_FORMAT]
//              [-x STREAMID_HEX] [-k PASSPHRASE | -K PASSPHRASE_HEX] [-r RATE] [-t SECONDS] [-w SPREAD_MS] [-l LATENCY_MS]
//              [-m LOCAL_PORTS]
//
// STREAMID_FORMAT holds one %d (the stream's index), e.g. "#!::r=bench-%d,m=publish".
// -x sends one raw streamid given in hex (any bytes, for hostile-input tests). -r 2 sends at twice
// real time, -r 0 as fast as libsrt takes it. -t stops after that many wall seconds (default: the
// file once). -m spreads the connections over that many local UDP ports (default 1: one libsrt
// multiplexer for all), as callers from many hosts arrive from many addresses. Prints one JSON line: connected, refused (with libsrt's reject reasons), bytes sent.
// Exit status: 0 when every connection was accepted and sent the file, 3 when any was refused.
#include <arpa/inet.h>
#include <srt/srt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG 1316

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct {
  SRTSOCKET s;
  int64_t start_us;  // when this stream starts sending (spread so keyframes do not align)
  size_t off;
  int done;
} Conn;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* file = NULL;
  const char* fmt = "publish:bench-%d";
  const char* hex = NULL;
  const char* pass = NULL;
  char passbuf[256];
  int port = 0, n = 1, latency = 120, spread_ms = 0, local_ports = 1;
  double media_s = 0, rate = 1.0, wall_s = 0;
  int c;
  while ((c = getopt(argc, argv, "h:p:f:d:n:s:x:k:K:r:t:w:l:m:")) != -1) {
    switch (c) {
      case 'h': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'f': file = optarg; break;
      case 'd': media_s = atof(optarg); break;
      case 'n': n = atoi(optarg); break;
      case 's': fmt = optarg; break;
      case 'x': hex = optarg; break;
      case 'k': pass = optarg; break;
      case 'K': {
        size_t m = 0;
        for (const char* h = optarg; h[0] && h[1] && m < sizeof passbuf - 1; h += 2) passbuf[m++] = (char)(hexval(h[0]) * 16 + hexval(h[1]));
        passbuf[m] = 0;
        pass = passbuf;
        break;
      }
      case 'r': rate = atof(optarg); break;
      case 't': wall_s = atof(optarg); break;
      case 'w': spread_ms = atoi(optarg); break;
      case 'l': latency = atoi(optarg); break;
      case 'm': local_ports = atoi(optarg); break;
      default: fprintf(stderr, "usage: see the comment at the top of srt-sender.c\n"); return 2;
    }
  }
  if (local_ports < 1) local_ports = 1;
  if (local_ports > n) local_ports = n;
  if (!file || !port || media_s <= 0 || n < 1) {
    fprintf(stderr, "srt-sender: -p PORT -f FILE -d SECONDS are required\n");
    return 2;
  }
  FILE* f = fopen(file, "rb");
  if (!f) { perror(file); return 2; }
  fseek(f, 0, SEEK_END);
  size_t size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char* data = malloc(size);
  if (!data || fread(data, 1, size, f) != size) { fprintf(stderr, "srt-sender: cannot read %s\n", file); return 2; }
  fclose(f);

  srt_startup();
  srt_setloglevel(2);  // errors only
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &sa.sin_addr);

  Conn* conns = calloc((size_t)n, sizeof(Conn));
  int connected = 0, refused = 0;
  // Connections share a few local UDP ports (round robin), so libsrt gives them one multiplexer per port: a
  // socket and two threads per port instead of per stream (at 100 streams the sender otherwise spends more
  // CPU on its own threads than on sending, on the cores the gateway is measured on).
  struct sockaddr_in* locals = calloc((size_t)local_ports, sizeof(struct sockaddr_in));
  for (int j = 0; j < local_ports; j++) {
    locals[j].sin_family = AF_INET;
    inet_pton(AF_INET, "0.0.0.0", &locals[j].sin_addr);
  }
  int sndbuf = 4 * 1024 * 1024;
  char reasons[4096] = "";
  for (int i = 0; i < n; i++) {
    SRTSOCKET s = srt_create_socket();
    int tt = SRTT_LIVE;
    srt_setsockflag(s, SRTO_TRANSTYPE, &tt, sizeof tt);
    srt_setsockflag(s, SRTO_LATENCY, &latency, sizeof latency);
    char sid[1024];
    int sidlen;
    if (hex) {
      sidlen = 0;
      for (const char* h = hex; h[0] && h[1] && sidlen < (int)sizeof sid; h += 2) sid[sidlen++] = (char)(hexval(h[0]) * 16 + hexval(h[1]));
    } else {
      sidlen = snprintf(sid, sizeof sid, fmt, i);
    }
    srt_setsockflag(s, SRTO_STREAMID, sid, sidlen);
    if (pass) srt_setsockflag(s, SRTO_PASSPHRASE, pass, (int)strlen(pass));
    srt_setsockflag(s, SRTO_UDP_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in* local = &locals[i % local_ports];
    if (srt_bind(s, (struct sockaddr*)local, sizeof *local) == SRT_ERROR) {
      fprintf(stderr, "srt-sender: bind: %s\n", srt_getlasterror_str());
      return 2;
    }
    if (local->sin_port == 0) {
      struct sockaddr_in got;
      int gl = sizeof got;
      if (srt_getsockname(s, (struct sockaddr*)&got, &gl) == 0) local->sin_port = got.sin_port;
    }
    if (srt_connect(s, (struct sockaddr*)&sa, sizeof sa) == SRT_ERROR) {
      refused++;
      int r = srt_getrejectreason(s);
      size_t l = strlen(reasons);
      if (l < sizeof reasons - 32) snprintf(reasons + l, sizeof reasons - l, "%s%d", l ? "," : "", r);
      srt_close(s);
      conns[i].s = SRT_INVALID_SOCK;
      conns[i].done = 1;
      continue;
    }
    connected++;
    conns[i].s = s;
  }

  // Pacing: byte b of the file is due at start + b / size * media_s / rate.
  int64_t t0 = now_us();
  for (int i = 0; i < n; i++) conns[i].start_us = t0 + (n > 1 ? (int64_t)spread_ms * 1000 * i / n : 0);
  double us_per_byte = rate > 0 ? media_s * 1e6 / (double)size / rate : 0;
  uint64_t sent = 0;
  int active = connected;
  while (active > 0) {
    int64_t now = now_us();
    if (wall_s > 0 && now - t0 >= (int64_t)(wall_s * 1e6)) break;
    int64_t next = now + 5000;
    active = 0;
    for (int i = 0; i < n; i++) {
      Conn* k = &conns[i];
      if (k->done) continue;
      active++;
      if (now < k->start_us) continue;
      while (k->off < size) {
        if (us_per_byte > 0 && k->start_us + (int64_t)(k->off * us_per_byte) > now) break;
        size_t len = size - k->off < MSG ? size - k->off : MSG;
        if (srt_sendmsg(k->s, data + k->off, (int)len, -1, 1) == SRT_ERROR) {
          k->done = 1;
          break;
        }
        k->off += len;
        sent += len;
      }
      if (k->off >= size) {
        if (wall_s > 0) k->off = 0, k->start_us = now;  // loop the file until -t ends
        else k->done = 1;
      }
    }
    int64_t sleep_us = next - now_us();
    if (sleep_us > 0) usleep((useconds_t)sleep_us);
  }
  // Let libsrt deliver what it buffered before closing (a live sender's close drops the rest).
  for (int i = 0; i < n; i++) {
    if (conns[i].s == SRT_INVALID_SOCK) continue;
    for (int w = 0; w < 300; w++) {
      size_t blocks = 0, bytes = 0;
      if (srt_getsndbuffer(conns[i].s, &blocks, &bytes) != 0 || blocks == 0) break;
      usleep(10000);
    }
    srt_close(conns[i].s);
  }
  printf("{\"connected\":%d,\"refused\":%d,\"rejectReasons\":[%s],\"bytesSent\":%llu,\"seconds\":%.2f}\n", connected, refused, reasons,
         (unsigned long long)sent, (now_us() - t0) / 1e6);
  srt_cleanup();
  return refused ? 3 : 0;
}
