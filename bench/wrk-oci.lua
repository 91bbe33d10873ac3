-- wrk script of bench/run: GET with the Accept header of an OCI image
-- manifest, and one machine-readable summary line when the run ends.
--
-- Blob GETs carry the same header, which registries ignore for blobs. No
-- response() function is defined, because wrk would then keep every
-- response body in memory to pass it to Lua.

wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"

-- Prints counters and latency percentiles (microseconds) in one line
-- that starts with "bench-summary".
function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      "bench-summary requests=%d bytes=%d duration_us=%d"
         .. " connect_errors=%d read_errors=%d write_errors=%d"
         .. " status_errors=%d timeouts=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.bytes, summary.duration,
      errors.connect, errors.read, errors.write, errors.status,
      errors.timeout,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99))))
end
