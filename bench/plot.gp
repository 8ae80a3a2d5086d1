# Mops/s per map, mix and thread count (throughput.csv medians): one panel per N and key shape.
# Usage: gnuplot -e "csv='bench/results/throughput.csv'; png='bench/results/throughput.png'; info='machine, compiler, flags, date'" bench/plot.gp
if (!exists("info")) info = ""
set terminal pngcairo size 1800,1300 noenhanced font ",10"
set output png
set datafile separator ","
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set ylabel "Mops/s (median)"
set grid ytics
set xtics rotate by -30
maps = "ShardedMap CuckooMap libcuckoo tbb std+shared_mutex absl-unsync"
configs = "read-heavy/1 read-heavy/2 read-heavy/8 exchange/1 exchange/2 exchange/8 rapid-grow/1 rapid-grow/2 rapid-grow/8 heartbeat/1 heartbeat/2 heartbeat/8"
# One row per configuration, one column per map, for key shape `shape` and N = `n`, built from the
# CSV with awk (a map that did not run a configuration, abseil at 2 and 8 threads, gives 0).
table(shape, n) = "< awk -F, -v shape=".shape." -v n=".n." 'NR>1 && $3==shape && $4==n {v[$2\"/\"$5\",\"$1]=$6} END {split(\"".configs."\",cs,\" \"); split(\"".maps."\",ms,\" \"); for (i=1;i<=length(cs);i++) {line=cs[i]; for (j=1;j<=length(ms);j++) {k=cs[i]\",\"ms[j]; line=line\",\"((k in v)?v[k]:0)}; print line}}' ".csv
set multiplot layout 2,2 title "devcache map benchmark (WORKLOADS.md v1.1, medians)\n".info
set key inside right top
set title "N = 2^20, random MAC keys"
plot for [j=1:words(maps)] table("random", 1048576) using (column(j+1)):xtic(1) title word(maps, j)
set key off
set title "N = 2^20, one-vendor sequential MAC keys (oui-seq)"
plot for [j=1:words(maps)] table("oui-seq", 1048576) using (column(j+1)):xtic(1) title word(maps, j)
set title "N = 2^14, random MAC keys"
plot for [j=1:words(maps)] table("random", 16384) using (column(j+1)):xtic(1) title word(maps, j)
set title "N = 2^14, one-vendor sequential MAC keys (oui-seq)"
plot for [j=1:words(maps)] table("oui-seq", 16384) using (column(j+1)):xtic(1) title word(maps, j)
unset multiplot
