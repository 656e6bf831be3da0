// What making, filling and sealing one trace spool segment costs on a file
// system, by way of doing it (data-plane/src/trace_report/mapped.rs): create,
// reserve 5 MiB (fallocate), map, then fault in the first PREFAULT KiB in
// one of four ways; then copy 70,000 bytes of records in (what a segment
// sealed by age holds at 3,600 requests a second), unmap and cut to size.
// Prints wall and CPU milliseconds per segment, averaged over 30.
//
//   cc -O2 -o /tmp/segment_make e2e/bench/segment_make.c
//   /tmp/segment_make MODE PREFAULT_KIB DIR
//
// MODE 0: MADV_POPULATE_WRITE only (the spool before); 1: zeros written
// with pwrite, then MADV_POPULATE_WRITE (the spool now); 2: zeros written
// only; 3: MADV_POPULATE_READ.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
static double cpu(){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); size_t pf=atoi(argv[2])*1024; const char*dir=argv[3];
  double w[4]={0},c[4]={0}; static char zeros[1<<20];
  int N=30;
  for(int i=0;i<N;i++){
    char p[256]; snprintf(p,sizeof p,"%s/seg%d",dir,i);
    double w0=now(),c0=cpu();
    int fd=open(p,O_RDWR|O_CREAT|O_EXCL,0600);
    fallocate(fd,0,0,5<<20);
    char*m=mmap(0,5<<20,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0);
    if(mode==0) madvise(m,pf,MADV_POPULATE_WRITE);
    if(mode==1) { pwrite(fd,zeros,pf,0); madvise(m,pf,MADV_POPULATE_WRITE);} 
    if(mode==2) { pwrite(fd,zeros,pf,0); }
    if(mode==3) { madvise(m,pf,MADV_POPULATE_READ);} 
    double w1=now(),c1=cpu();
    for(size_t o=0;o<70000;o++) m[o]=1;
    double w2=now(),c2=cpu();
    munmap(m,5<<20); ftruncate(fd,70000); close(fd);
    double w3=now(),c3=cpu();
    w[0]+=w1-w0;c[0]+=c1-c0;w[1]+=w2-w1;c[1]+=c2-c1;w[2]+=w3-w2;c[2]+=c3-c2;
    unlink(p);
  }
  printf("mode=%d pf=%zuK: make %.3f (cpu %.3f) write %.3f (cpu %.3f) seal %.3f (cpu %.3f) ms\n",mode,pf/1024,w[0]/N,c[0]/N,w[1]/N,c[1]/N,w[2]/N,c[2]/N);
}
