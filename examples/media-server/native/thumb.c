/* Thumbnail geometry: the largest size fitting in a box, aspect kept. */
int thumb_width(int w, int h, int box) {
    if (w <= 0 || h <= 0 || box <= 0) return 0;
    return w >= h ? box : (int)((long)w * box / h);
}
