# Mops/s per map, mix and thread count at N = 2^20, random keys (from throughput.csv medians).
# Usage: gnuplot -e "csv='bench/results/throughput.csv'; png='bench/results/throughput.png'" bench/plot.gp
set terminal pngcairo size 1400,800 noenhanced font ",10"
set output png
set datafile separator ","
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set ylabel "Mops/s (median)"
set key outside right top
set grid ytics
set xtics rotate by -30
set title "devcache map benchmark: N = 2^20, random MAC keys (WORKLOADS.md v1.1)"
maps = "ShardedMap CuckooMap libcuckoo tbb std+shared_mutex absl-unsync"
configs = "read-heavy/1 read-heavy/2 read-heavy/8 exchange/1 exchange/2 exchange/8 rapid-grow/1 rapid-grow/2 rapid-grow/8 heartbeat/1 heartbeat/2 heartbeat/8"
# One row per configuration, one column per map, built from the CSV with awk.
table = "< awk -F, 'NR>1 && $3==\"random\" && $4==1048576 {v[$2\"/\"$5\",\"$1]=$6; c[$2\"/\"$5]=1} END {split(\"".configs."\",cs,\" \"); split(\"".maps."\",ms,\" \"); for (i=1;i<=length(cs);i++) {line=cs[i]; for (j=1;j<=length(ms);j++) {k=cs[i]\",\"ms[j]; line=line\",\"((k in v)?v[k]:0)}; print line}}' ".csv
plot for [j=1:words(maps)] table using (column(j+1)):xtic(1) title word(maps, j)
