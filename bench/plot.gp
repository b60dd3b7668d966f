# plot.gp: the plots of docs/PERFORMANCE.md, drawn by bench/run.py with
#   gnuplot -e "outdir='docs/perf'; servers='chorus inspircd ngircd'" bench/plot.gp
# from the data files run.py writes there: throughput.dat (a row per server:
# median, min, max of two throughput figures) and latency.dat (a block per
# server: offered load, then median, min, max of p50 and of p99).

set terminal pngcairo size 1000,520 noenhanced font ",10"
set grid ytics
set key top right

set output outdir.'/throughput.png'
set title 'Fan-out throughput on one machine (bars: median; whiskers: min-max over runs)'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set ylabel 'messages per second'
set yrange [0:*]
set format y '%.0f'
plot outdir.'/throughput.dat' using 2:3:4:xtic(1) title 'delivered/s at saturation (rooms of 10)', \
     '' using 5:6:7 title 'accepted/s at saturation (rooms of 2; chorus stores each durably)'

set output outdir.'/latency.png'
set style data yerrorlines
set multiplot layout 1,2 title 'End-to-end latency vs offered load (median, min-max over runs)'
set logscale y
set format y '%g'
set yrange [*:*]
set xlabel 'PRIVMSGs sent per second (each to 9 other members)'
set ylabel 'milliseconds'
set key top left
set title 'p50'
plot for [i=1:words(servers)] outdir.'/latency.dat' index (i-1) using 2:3:4:5 title word(servers, i) lw 2 pt 7
set title 'p99'
plot for [i=1:words(servers)] outdir.'/latency.dat' index (i-1) using 2:6:7:8 title word(servers, i) lw 2 pt 7
unset multiplot
