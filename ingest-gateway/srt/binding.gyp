{
  "targets": [
    {
      "target_name": "srt_ingest",
      "sources": ["src/addon.cc", "src/client.cc", "src/control.cc", "src/streamid.cc", "src/ts_probe.cc", "src/spawn.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["<!@(pkg-config --cflags srt)", "-std=c++17", "-fexceptions", "-Wall"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "libraries": ["<!@(pkg-config --libs srt)", "-lpthread"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
    },
    {
      "target_name": "srt-ingestd",
      "type": "executable",
      "sources": ["src/daemon.cc", "src/server.cc", "src/control.cc", "src/streamid.cc", "src/ts_probe.cc"],
      "cflags_cc": ["<!@(pkg-config --cflags srt)", "-std=c++17", "-fexceptions", "-Wall", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "libraries": ["<!@(pkg-config --libs srt)", "-lpthread"]
    }
  ]
}
